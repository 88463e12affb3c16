//! A group's stored definition (`XPROCESS.DEFINE`): the call's options and
//! effects, given once, and the standing processor that may run it
//! (`XPROCESS.START`). It is kept as its arguments, so it reads back as it
//! was written and every server parses it with the same rules.

use crate::errors::ReplyError;
use crate::parse;
use crate::request::Request;

/// READ's COUNT for a processor started without one.
pub const DEFAULT_PROCESSOR_COUNT: u64 = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    pub group: Vec<u8>,
    /// The arguments of XPROCESS.DEFINE after `key group`.
    pub args: Vec<Vec<u8>>,
    /// Set by XPROCESS.START (and kept, stopped, by XPROCESS.STOP).
    pub processor: Option<Processor>,
}

/// How the server runs a definition by itself: `XPROCESS key group
/// CONSUMER consumer READ COUNT count [CLAIM min-idle-ms]`, over and over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processor {
    pub consumer: Vec<u8>,
    pub count: u64,
    pub claim: Option<u64>,
    pub running: bool,
}

impl Definition {
    /// The definition as a request for `stream` (no IDS, no READ, no
    /// consumer yet).
    pub fn request<'a>(&'a self, stream: &'a [u8]) -> Result<Request<'a>, ReplyError> {
        let mut argv: Vec<&'a [u8]> = Vec::with_capacity(3 + self.args.len());
        argv.extend([&b""[..], stream, &self.group]);
        argv.extend(self.args.iter().map(Vec::as_slice));
        parse::parse_definition(&argv)
    }

    /// Bytes held, for MEMORY USAGE.
    pub fn memory(&self) -> usize {
        let processor = self.processor.as_ref();
        std::mem::size_of::<Definition>()
            + self.group.capacity()
            + self.args.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.args.iter().map(Vec::capacity).sum::<usize>()
            + processor.map_or(0, |p| {
                std::mem::size_of::<Processor>() + p.consumer.capacity()
            })
    }

    /// XPROCESS.START's arguments after `key group`, as INFO shows them.
    pub fn start_args(&self) -> Option<Vec<Vec<u8>>> {
        let p = self.processor.as_ref()?;
        let mut args = vec![
            b"CONSUMER".to_vec(),
            p.consumer.clone(),
            b"COUNT".to_vec(),
            p.count.to_string().into_bytes(),
        ];
        if let Some(claim) = p.claim {
            args.extend([b"CLAIM".to_vec(), claim.to_string().into_bytes()]);
        }
        Some(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_definition_parses_back() {
        let def = Definition {
            group: b"g".to_vec(),
            args: ["KEY", "$order", "HINCRBY", "totals", "$cur", "$amount"]
                .map(|a| a.as_bytes().to_vec())
                .to_vec(),
            processor: None,
        };
        let req = def.request(b"orders").unwrap();
        assert_eq!((req.stream, req.group), (&b"orders"[..], &b"g"[..]));
        assert_eq!(req.effects.len(), 1);
        assert!(req.business_key.is_some());
        assert!(req.read.is_none() && req.ids.is_empty());
    }
}
