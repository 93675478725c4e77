//! Primitive binary encoding shared by the wire protocol and the on-disk log: big-endian integers,
//! `u16`-prefixed UTF-8 strings and `u32`-prefixed byte strings. Decoding checks every length
//! against what is left before touching it, so no input can make it panic or over-allocate.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a body could not be decoded. Carries a static reason so decoding never allocates on bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed body: {0}")]
pub struct DecodeError(pub &'static str);

/// A cursor over a received body.
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.remaining() < n {
            Err(DecodeError(what))
        } else {
            Ok(())
        }
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1, "truncated u8")?;
        Ok(self.buf.get_u8())
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2, "truncated u16")?;
        Ok(self.buf.get_u16())
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4, "truncated u32")?;
        Ok(self.buf.get_u32())
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8, "truncated u64")?;
        Ok(self.buf.get_u64())
    }

    /// A `u16`-length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        self.need(len, "truncated string")?;
        let raw = self.buf.split_to(len);
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError("string is not UTF-8"))
    }

    /// A `u32`-length-prefixed byte string; shares the frame's allocation.
    pub fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        self.need(len, "truncated bytes")?;
        Ok(self.buf.split_to(len))
    }

    /// Every field consumed: trailing bytes are an error, so two encodings never mean the same thing.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.has_remaining() {
            Err(DecodeError("trailing bytes"))
        } else {
            Ok(())
        }
    }
}

/// Appends primitives to a buffer. Callers validate lengths beforehand (see [`put_str`]).
pub trait WriteExt {
    fn put_str(&mut self, s: &str);
    fn put_blob(&mut self, b: &[u8]);
}

impl WriteExt for BytesMut {
    /// Strings longer than `u16::MAX` are cut at a char boundary; protocol validation keeps names
    /// far below that, so this only guards against misuse.
    fn put_str(&mut self, s: &str) {
        let mut end = s.len().min(usize::from(u16::MAX));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.put_u16(end as u16);
        self.put_slice(&s.as_bytes()[..end]);
    }

    fn put_blob(&mut self, b: &[u8]) {
        let len = b.len().min(u32::MAX as usize);
        self.put_u32(len as u32);
        self.put_slice(&b[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let mut b = BytesMut::new();
        b.put_u8(7);
        b.put_str("héllo");
        b.put_blob(b"payload");
        b.put_u64(42);
        let full = b.freeze();
        let mut r = Reader::new(full.clone());
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.str().unwrap(), "héllo");
        assert_eq!(&r.bytes().unwrap()[..], b"payload");
        assert_eq!(r.u64().unwrap(), 42);
        r.finish().unwrap();
        for cut in 0..full.len() {
            let mut r = Reader::new(full.slice(..cut));
            let ok = (|| -> Result<(), DecodeError> {
                r.u8()?;
                r.str()?;
                r.bytes()?;
                r.u64()?;
                Ok(())
            })();
            assert!(ok.is_err(), "cut at {cut} decoded");
        }
    }

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        let mut b = BytesMut::new();
        b.put_u32(u32::MAX);
        b.put_slice(b"abc");
        assert_eq!(
            Reader::new(b.freeze()).bytes(),
            Err(DecodeError("truncated bytes"))
        );
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut b = BytesMut::new();
        b.put_u16(2);
        b.put_slice(&[0xff, 0xfe]);
        assert!(Reader::new(b.freeze()).str().is_err());
    }
}
