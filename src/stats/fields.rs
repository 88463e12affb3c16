//! `INFO` fields from any `#[derive(Serialize)]` struct of counters: serde
//! walks the struct, so a new counter needs no second list of names.

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};
use std::fmt;

/// The struct's fields as (name, value), in declaration order.
pub fn fields<T: Serialize>(value: &T) -> Vec<(&'static str, u64)> {
    let mut out = Fields(Vec::new());
    // Only structs of unsigned integers are accepted; anything else is a bug
    // caught by the unit test below, and yields no fields rather than a panic.
    match value.serialize(&mut out) {
        Ok(()) => out.0,
        Err(_) => Vec::new(),
    }
}

struct Fields(Vec<(&'static str, u64)>);

#[derive(Debug)]
pub struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("INFO fields are structs of unsigned integers")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

impl SerializeStruct for &mut Fields {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.0.push((key, value.serialize(Number)?));
        Ok(())
    }

    fn end(self) -> Result<(), Unsupported> {
        Ok(())
    }
}

/// Refuse every kind of value but the listed ones.
macro_rules! refuse {
    ($ok:ty; $($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, Unsupported> {
            Err(Unsupported)
        })*
    };
}

macro_rules! refuse_rest {
    ($ok:ty) => {
        refuse!($ok;
            serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
            serialize_i64(i64), serialize_f32(f32), serialize_f64(f64), serialize_char(char),
            serialize_str(&str), serialize_bytes(&[u8]), serialize_none(), serialize_unit(),
            serialize_unit_struct(&'static str),
            serialize_unit_variant(&'static str, u32, &'static str),
        );
        fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<$ok, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: &T,
        ) -> Result<$ok, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<$ok, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Unsupported> {
            Err(Unsupported)
        }
    };
}

impl Serializer for &mut Fields {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Unsupported> {
        Ok(self)
    }

    refuse!((); serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64));
    refuse_rest!(());
}

/// One counter's value.
struct Number;

impl Serializer for Number {
    type Ok = u64;
    type Error = Unsupported;
    type SerializeSeq = Impossible<u64, Unsupported>;
    type SerializeTuple = Impossible<u64, Unsupported>;
    type SerializeTupleStruct = Impossible<u64, Unsupported>;
    type SerializeTupleVariant = Impossible<u64, Unsupported>;
    type SerializeMap = Impossible<u64, Unsupported>;
    type SerializeStruct = Impossible<u64, Unsupported>;
    type SerializeStructVariant = Impossible<u64, Unsupported>;

    fn serialize_u8(self, v: u8) -> Result<u64, Unsupported> {
        Ok(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<u64, Unsupported> {
        Ok(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<u64, Unsupported> {
        Ok(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<u64, Unsupported> {
        Ok(v)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }

    refuse_rest!(u64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Counters {
        calls: u64,
        small: u32,
    }

    #[derive(Serialize)]
    struct Bad {
        name: String,
    }

    #[test]
    fn struct_fields_in_order_and_nothing_else() {
        let c = Counters { calls: 7, small: 2 };
        assert_eq!(fields(&c), vec![("calls", 7), ("small", 2)]);
        assert!(fields(&Bad { name: "x".into() }).is_empty());
        assert!(fields(&5u64).is_empty());
    }
}
