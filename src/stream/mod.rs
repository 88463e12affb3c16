//! Reading a stream's entries directly (`reader`), and the entries one call
//! has read, kept for the rest of the call (`entry_cache`).

pub mod entry_cache;
pub mod reader;
