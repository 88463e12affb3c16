//! The dedupe index's structures: the processed IDs as ranges (`ranges`,
//! so memory follows the number of holes, not of entries), the business
//! keys remembered for a window (`key_store`), the bytes of an RDB/DUMP
//! payload (`codec`) and of an `XPROCESS.PATCH` change (`patch`).

pub mod codec;
pub mod key_store;
pub mod patch;
pub mod ranges;
