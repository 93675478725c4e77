//! Masks secret values as `***` in a stream of output bytes, also when a value is split
//! across chunks.

/// What a secret's bytes are replaced with.
pub const MASK: &[u8] = b"***";

/// One output stream's masker: `push` returns the bytes that are safe to store and publish;
/// it holds back only a tail that could still be the start of a secret. `finish` returns the
/// rest at end of stream.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    held: Vec<u8>,
}

impl Masker {
    /// A masker for these values (empty ones are ignored; longest first so a secret that
    /// contains another is masked whole).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<[u8]>>(secrets: I) -> Masker {
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .map(|s| s.as_ref().to_vec())
            .filter(|s| !s.is_empty())
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Masker {
            secrets,
            held: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return data.to_vec();
        }
        self.held.extend_from_slice(data);
        let buf = std::mem::take(&mut self.held);
        let (out, rest) = self.scan(&buf, false);
        self.held = rest;
        out
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.held);
        self.scan(&buf, true).0
    }

    fn scan(&self, buf: &[u8], end: bool) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'outer: while i < buf.len() {
            let rest = &buf[i..];
            for s in &self.secrets {
                if rest.starts_with(s) {
                    out.extend_from_slice(MASK);
                    i += s.len();
                    continue 'outer;
                }
            }
            if !end && self.secrets.iter().any(|s| s.starts_with(rest)) {
                // The tail could be a secret that continues in the next chunk.
                return (out, rest.to_vec());
            }
            out.push(buf[i]);
            i += 1;
        }
        (out, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_whole_and_split_values() {
        let mut m = Masker::new(["hunter2", "hunter2-long"]);
        let mut out = m.push(b"pw=hunter2 and hun");
        out.extend(m.push(b"ter2-long; hunt"));
        out.extend(m.push(b"ing season"));
        out.extend(m.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "pw=*** and ***; hunting season"
        );
        // Byte by byte.
        let mut m = Masker::new(["s3cr3t"]);
        let mut out = Vec::new();
        for b in b"xs3cr3ts3cr3y" {
            out.extend(m.push(&[*b]));
        }
        out.extend(m.finish());
        assert_eq!(out, b"x***s3cr3y");
        // No secrets: bytes pass through untouched.
        let mut m = Masker::new(Vec::<String>::new());
        assert_eq!(m.push(b"abc"), b"abc");
    }
}
