//! Hash fields within one call: HINCRBY results written once per field at
//! the end (`writes`), and field values read from Redis, in bulk when a call
//! reads many fields of one small hash (`reads`).

pub mod reads;
pub mod writes;
