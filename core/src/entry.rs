//! A stream entry's fields, and the view of one entry that templates expand
//! against.

/// An entry's field/value pairs, owned.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The entry a template is expanded against.
pub struct Entry<'e> {
    /// Canonical `ms-seq` text of the entry's ID.
    pub id: &'e str,
    pub fields: &'e [(&'e [u8], &'e [u8])],
}

impl<'e> Entry<'e> {
    /// The value of `field`; with repeated field names the last wins, as in HSET.
    pub fn get(&self, field: &[u8]) -> Option<&'e [u8]> {
        self.fields
            .iter()
            .rev()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| *v)
    }
}
