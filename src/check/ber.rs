//! The sliver of BER (X.690) that an LDAP bind and base search need: definite lengths,
//! low tag numbers, and a decoder that never reads past its input or trusts a length.

/// A decoding failure; LDAP answers that do not parse are protocol errors.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    #[error("truncated BER element")]
    Truncated,
    #[error("unsupported BER length form")]
    BadLength,
    #[error("BER element of {0} bytes exceeds the cap")]
    TooLarge(usize),
    #[error("unexpected BER tag {found:#04x}, wanted {wanted:#04x}")]
    UnexpectedTag { found: u8, wanted: u8 },
    #[error("BER integer out of range")]
    BadInteger,
}

/// Appends one element: tag, definite length, content.
pub fn put(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// Minimal two's-complement encoding of a non-negative integer.
pub fn put_int(out: &mut Vec<u8>, tag: u8, value: u32) {
    let bytes = value.to_be_bytes();
    let mut start = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    if bytes[start] & 0x80 != 0 {
        start -= 1;
        let mut v = vec![0u8];
        v.extend_from_slice(&bytes[start + 1..]);
        put(out, tag, &v);
        return;
    }
    put(out, tag, &bytes[start..]);
}

/// One element: its tag and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

/// Reads the element at the start of `buf`; `Ok(None)` if more bytes are needed. Returns
/// the element and the number of bytes it took. `cap` bounds the content length.
pub fn element(buf: &[u8], cap: usize) -> Result<Option<(Element<'_>, usize)>, BerError> {
    let (Some(&tag), Some(&first)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if tag & 0x1f == 0x1f {
        return Err(BerError::UnexpectedTag {
            found: tag,
            wanted: 0,
        });
    }
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(BerError::BadLength);
        }
        let Some(bytes) = buf.get(2..2 + n) else {
            return Ok(None);
        };
        (
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
            2 + n,
        )
    };
    if len > cap {
        return Err(BerError::TooLarge(len));
    }
    match buf.get(header..header + len) {
        Some(content) => Ok(Some((Element { tag, content }, header + len))),
        None => Ok(None),
    }
}

/// Walks the elements inside a constructed element.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(content: &'a [u8]) -> Reader<'a> {
        Reader { rest: content }
    }

    pub fn next(&mut self) -> Result<Element<'a>, BerError> {
        let (e, used) = element(self.rest, usize::MAX)?.ok_or(BerError::Truncated)?;
        self.rest = &self.rest[used..];
        Ok(e)
    }

    pub fn expect(&mut self, tag: u8) -> Result<Element<'a>, BerError> {
        let e = self.next()?;
        if e.tag != tag {
            return Err(BerError::UnexpectedTag {
                found: e.tag,
                wanted: tag,
            });
        }
        Ok(e)
    }

    pub fn int(&mut self, tag: u8) -> Result<i64, BerError> {
        let e = self.expect(tag)?;
        if e.content.is_empty() || e.content.len() > 8 {
            return Err(BerError::BadInteger);
        }
        let mut v: i64 = if e.content[0] & 0x80 != 0 { -1 } else { 0 };
        for &b in e.content {
            v = (v << 8) | i64::from(b);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_short_and_long() {
        let mut out = Vec::new();
        put(&mut out, 0x04, b"abc");
        assert_eq!(out, [0x04, 3, b'a', b'b', b'c']);
        let mut out = Vec::new();
        put(&mut out, 0x04, &[0u8; 300]);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (e, used) = element(&out, 1000).unwrap().unwrap();
        assert_eq!((e.tag, e.content.len(), used), (0x04, 300, 304));
        assert_eq!(element(&out[..100], 1000).unwrap(), None);
        assert_eq!(element(&out, 10), Err(BerError::TooLarge(300)));
        assert_eq!(
            element(&[0x30, 0x85, 1, 1, 1, 1, 1], 10),
            Err(BerError::BadLength)
        );
    }

    #[test]
    fn integers() {
        for (v, bytes) in [
            (0u32, vec![0u8]),
            (3, vec![3]),
            (127, vec![127]),
            (128, vec![0, 128]),
            (256, vec![1, 0]),
        ] {
            let mut out = Vec::new();
            put_int(&mut out, 0x02, v);
            assert_eq!(&out[2..], &bytes[..], "{v}");
            assert_eq!(Reader::new(&out).int(0x02).unwrap(), i64::from(v));
        }
        assert_eq!(Reader::new(&[0x02, 1, 0xff]).int(0x02).unwrap(), -1);
    }
}
