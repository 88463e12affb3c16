//! A stream entry's fields, and the view of one entry that templates expand
//! against.

/// An entry's field/value pairs, owned: their bytes in one buffer, so that
/// reading an entry allocates twice whatever its number of fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    bytes: Vec<u8>,
    /// Where each field and each value ends in `bytes`, in turn.
    ends: Vec<usize>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Room for `pairs` pairs of `bytes` bytes in all.
    pub fn with_capacity(pairs: usize, bytes: usize) -> Fields {
        Fields {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(2 * pairs),
        }
    }

    pub fn push(&mut self, field: &[u8], value: &[u8]) {
        for part in [field, value] {
            self.bytes.extend_from_slice(part);
            self.ends.push(self.bytes.len());
        }
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all fields and values.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.len()).map(|n| {
            let start = match n {
                0 => 0,
                _ => self.ends[2 * n - 1],
            };
            let (field_end, value_end) = (self.ends[2 * n], self.ends[2 * n + 1]);
            (
                &self.bytes[start..field_end],
                &self.bytes[field_end..value_end],
            )
        })
    }
}

impl<F: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(F, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (F, V)>>(pairs: I) -> Fields {
        let mut fields = Fields::new();
        for (field, value) in pairs {
            fields.push(field.as_ref(), value.as_ref());
        }
        fields
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_come_back_as_pushed() {
        let pairs = [("a", "1"), ("", "empty name"), ("b", ""), ("a", "2")];
        let fields: Fields = pairs.iter().copied().collect();
        assert_eq!(fields.len(), 4);
        assert_eq!(fields.byte_len(), 15);
        let back: Vec<(&[u8], &[u8])> = fields.iter().collect();
        let want: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(f, v)| (f.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(back, want);
        assert!(Fields::new().is_empty() && Fields::new().iter().next().is_none());
    }
}
