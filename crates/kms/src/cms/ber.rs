//! A small, strict, bounded BER reader, and the few writer helpers the envelope encoder needs.
//!
//! KMS returns `CiphertextForRecipient` in BER with indefinite lengths and chunked (constructed)
//! OCTET STRINGs, which DER-only parsers reject; a general ASN.1 library would be far more code
//! than the one structure we read. This reader handles exactly the BER that structure needs and
//! refuses everything else:
//!
//! - low tag numbers only (below 31; CMS needs nothing else);
//! - definite lengths in short form or long form of 1 to 4 bytes, indefinite length only on
//!   constructed elements, each closed by an exact `00 00` end-of-contents;
//! - nesting at most [`MAX_DEPTH`] deep, counting both the elements the caller descends into
//!   and the indefinite-length elements skipped while looking for an end-of-contents;
//! - every length checked against the bytes that enclose it, so no slice is ever out of range.
//!
//! The reader never recurses on input: finding the end of an indefinite-length element is a
//! loop with a level counter, and the only recursion (chunked OCTET STRINGs) is bounded by
//! [`MAX_DEPTH`] through [`Element::children`]. The schema itself (which element comes next)
//! lives in the caller.

use super::CmsError;

/// Deepest nesting accepted. The envelope is 11 levels deep at most (KMS output: 10).
pub(crate) const MAX_DEPTH: usize = 16;

/// `SEQUENCE` (constructed).
pub(crate) const SEQUENCE: u8 = 0x30;
/// `SET` (constructed).
pub(crate) const SET: u8 = 0x31;
/// `INTEGER`.
pub(crate) const INTEGER: u8 = 0x02;
/// `OCTET STRING`, primitive form.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// `OCTET STRING`, constructed (chunked) form.
pub(crate) const OCTET_STRING_CONSTRUCTED: u8 = 0x24;
/// `NULL`.
pub(crate) const NULL: u8 = 0x05;
/// `OBJECT IDENTIFIER`.
pub(crate) const OID: u8 = 0x06;
/// Context-specific `[0]`, primitive.
pub(crate) const CONTEXT_0: u8 = 0x80;
/// Context-specific `[0]`, constructed.
pub(crate) const CONTEXT_0_CONSTRUCTED: u8 = 0xA0;
/// Context-specific `[1]`, constructed.
pub(crate) const CONTEXT_1_CONSTRUCTED: u8 = 0xA1;
/// Context-specific `[2]`, constructed.
pub(crate) const CONTEXT_2_CONSTRUCTED: u8 = 0xA2;

/// The constructed bit of an identifier octet.
const CONSTRUCTED: u8 = 0x20;

/// One element: its identifier octet and its contents (without any end-of-contents marker).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Element<'a> {
    /// The identifier octet (class, constructed bit, tag number below 31).
    pub(crate) tag: u8,
    /// The contents octets.
    pub(crate) content: &'a [u8],
    /// Nesting depth of this element (the outermost is 0).
    depth: usize,
}

impl<'a> Element<'a> {
    /// Whether this element is constructed.
    pub(crate) fn is_constructed(&self) -> bool {
        self.tag & CONSTRUCTED != 0
    }

    /// A reader over the elements inside this constructed element.
    ///
    /// # Errors
    /// [`CmsError::Malformed`] if the element is primitive or nesting would exceed [`MAX_DEPTH`].
    pub(crate) fn children(&self) -> Result<Reader<'a>, CmsError> {
        if !self.is_constructed() {
            return Err(CmsError::Malformed("expected a constructed element"));
        }
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(CmsError::Malformed("nesting too deep"));
        }
        Ok(Reader {
            data: self.content,
            pos: 0,
            depth,
        })
    }

    /// The value of an OCTET STRING in either form (or of an implicitly tagged one), with the
    /// chunks of a constructed encoding concatenated. Chunks must be universal OCTET STRINGs.
    ///
    /// # Errors
    /// [`CmsError::Malformed`] on a chunk of another type or nesting beyond [`MAX_DEPTH`].
    pub(crate) fn octets(&self) -> Result<Vec<u8>, CmsError> {
        let mut out = Vec::new();
        self.append_octets(&mut out)?;
        Ok(out)
    }

    fn append_octets(&self, out: &mut Vec<u8>) -> Result<(), CmsError> {
        if !self.is_constructed() {
            out.extend_from_slice(self.content);
            return Ok(());
        }
        // Recursion bounded by MAX_DEPTH: `children` fails beyond it.
        let mut chunks = self.children()?;
        while !chunks.is_empty() {
            let chunk = chunks.read()?;
            if chunk.tag != OCTET_STRING && chunk.tag != OCTET_STRING_CONSTRUCTED {
                return Err(CmsError::Malformed(
                    "a chunk of an OCTET STRING is not an OCTET STRING",
                ));
            }
            chunk.append_octets(out)?;
        }
        Ok(())
    }
}

/// A definite length, or the indefinite-length marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    Definite(usize),
    Indefinite,
}

/// Reads the identifier and length octets at `pos`: (tag, length, header length).
fn header(data: &[u8], pos: usize) -> Result<(u8, Length, usize), CmsError> {
    const TRUNCATED: CmsError = CmsError::Malformed("truncated");
    let tag = *data.get(pos).ok_or(TRUNCATED)?;
    if tag & 0x1F == 0x1F {
        return Err(CmsError::Malformed("high tag numbers are not supported"));
    }
    let first = *data.get(pos + 1).ok_or(TRUNCATED)?;
    match first {
        0x00..=0x7F => Ok((tag, Length::Definite(usize::from(first)), 2)),
        0x80 => Ok((tag, Length::Indefinite, 2)),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7F);
            let bytes = data.get(pos + 2..pos + 2 + count).ok_or(TRUNCATED)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            Ok((tag, Length::Definite(len), 2 + count))
        }
        _ => Err(CmsError::Malformed("length field too long")),
    }
}

/// A cursor over a sequence of elements (the contents of one constructed element).
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader over top-level input.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            depth: 0,
        }
    }

    /// Whether every element has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The identifier octet of the next element, if any.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Reads the next element.
    ///
    /// # Errors
    /// [`CmsError::Malformed`] on truncation, a stray end-of-contents, an indefinite length on
    /// a primitive element, or nesting beyond [`MAX_DEPTH`].
    pub(crate) fn read(&mut self) -> Result<Element<'a>, CmsError> {
        let (tag, length, header_len) = header(self.data, self.pos)?;
        if tag == 0 {
            return Err(CmsError::Malformed("unexpected end-of-contents"));
        }
        let start = self.pos + header_len;
        match length {
            Length::Definite(len) => {
                let end = start
                    .checked_add(len)
                    .filter(|&end| end <= self.data.len())
                    .ok_or(CmsError::Malformed("truncated"))?;
                self.pos = end;
                Ok(Element {
                    tag,
                    content: &self.data[start..end],
                    depth: self.depth,
                })
            }
            Length::Indefinite => {
                if tag & CONSTRUCTED == 0 {
                    return Err(CmsError::Malformed(
                        "indefinite length on a primitive element",
                    ));
                }
                let end = self.find_end_of_contents(start)?;
                // `end` is the position of this element's own end-of-contents (two bytes).
                self.pos = end + 2;
                Ok(Element {
                    tag,
                    content: &self.data[start..end],
                    depth: self.depth,
                })
            }
        }
    }

    /// Finds the end-of-contents closing an indefinite-length element whose contents start at
    /// `start`, skipping nested elements iteratively. Returns the position of that `00 00`.
    fn find_end_of_contents(&self, start: usize) -> Result<usize, CmsError> {
        let mut pos = start;
        // Open indefinite-length elements, this one included.
        let mut level = 1usize;
        loop {
            let (tag, length, header_len) = header(self.data, pos)?;
            if tag == 0 {
                if length != Length::Definite(0) || header_len != 2 {
                    return Err(CmsError::Malformed("malformed end-of-contents"));
                }
                level -= 1;
                if level == 0 {
                    return Ok(pos);
                }
                pos += 2;
                continue;
            }
            match length {
                Length::Definite(len) => {
                    pos = pos
                        .checked_add(header_len)
                        .and_then(|p| p.checked_add(len))
                        .filter(|&p| p <= self.data.len())
                        .ok_or(CmsError::Malformed("truncated"))?;
                }
                Length::Indefinite => {
                    if tag & CONSTRUCTED == 0 {
                        return Err(CmsError::Malformed(
                            "indefinite length on a primitive element",
                        ));
                    }
                    level += 1;
                    if self.depth + level > MAX_DEPTH {
                        return Err(CmsError::Malformed("nesting too deep"));
                    }
                    pos += header_len;
                }
            }
        }
    }

    /// Reads the next element and checks its identifier octet.
    ///
    /// # Errors
    /// [`CmsError::Malformed`] with `what` if the element is missing or has another tag, and
    /// any error of [`Reader::read`].
    pub(crate) fn read_tag(
        &mut self,
        tag: u8,
        what: &'static str,
    ) -> Result<Element<'a>, CmsError> {
        if self.peek_tag() != Some(tag) {
            return Err(CmsError::Malformed(what));
        }
        self.read()
    }

    /// Checks that every element has been read.
    ///
    /// # Errors
    /// [`CmsError::Malformed`] with `what` if elements remain.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), CmsError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CmsError::Malformed(what))
        }
    }
}

/// Appends a definite length in the minimal form.
fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Checked just above: fits in seven bits.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = &bytes[skip..];
    // At most size_of::<usize>() bytes, far below 0x7F.
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Appends a definite-length element.
pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_length(out, content.len());
    out.extend_from_slice(content);
}

/// Appends the header of an indefinite-length constructed element; close it with
/// [`push_end_of_contents`].
pub(crate) fn push_indefinite(out: &mut Vec<u8>, tag: u8) {
    out.push(tag);
    out.push(0x80);
}

/// Appends an end-of-contents marker.
pub(crate) fn push_end_of_contents(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x00, 0x00]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn read_one(data: &[u8]) -> Result<(u8, Vec<u8>), CmsError> {
        let mut r = Reader::new(data);
        let e = r.read()?;
        r.finish("trailing")?;
        Ok((e.tag, e.octets()?))
    }

    #[test]
    fn definite_short_and_long_lengths() {
        assert_eq!(read_one(&[0x04, 0x01, 0xAA]).unwrap(), (0x04, vec![0xAA]));
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        assert_eq!(read_one(&long).unwrap().1.len(), 0x80);
        // Non-minimal long form is legal BER.
        assert_eq!(
            read_one(&[0x04, 0x82, 0x00, 0x01, 0xAA]).unwrap().1,
            vec![0xAA]
        );
    }

    #[test]
    fn chunked_octet_string_indefinite_and_nested() {
        // 24 80 { 04 01 AA, 24 80 { 04 02 BB CC } 00 00, 24 03 { 04 01 DD } } 00 00
        let data = [
            0x24, 0x80, 0x04, 0x01, 0xAA, 0x24, 0x80, 0x04, 0x02, 0xBB, 0xCC, 0x00, 0x00, 0x24,
            0x03, 0x04, 0x01, 0xDD, 0x00, 0x00,
        ];
        assert_eq!(read_one(&data).unwrap().1, vec![0xAA, 0xBB, 0xCC, 0xDD]);
    }

    #[test]
    fn rejects_bad_encodings() {
        let bad: &[&[u8]] = &[
            &[],
            &[0x04],
            &[0x04, 0x02, 0xAA],
            &[0x04, 0x80, 0x00, 0x00],             // indefinite primitive
            &[0x24, 0x80, 0x04, 0x01, 0xAA],       // missing end-of-contents
            &[0x24, 0x80, 0x04, 0x01, 0xAA, 0x00], // half an end-of-contents
            &[0x24, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00], // end-of-contents with a length
            &[0x00, 0x00],                         // stray end-of-contents
            &[0x1F, 0x01, 0x00],                   // high tag number
            &[0x04, 0x85, 0, 0, 0, 0, 1, 0],       // five length bytes
            &[0x04, 0xFF],
            &[0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF], // length past the end
            &[0x24, 0x03, 0x02, 0x01, 0x00],       // a chunk that is not an OCTET STRING
            &[0x04, 0x01, 0xAA, 0x00],             // trailing byte
        ];
        for data in bad {
            assert!(
                matches!(read_one(data), Err(CmsError::Malformed(_))),
                "{data:02x?}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        // MAX_DEPTH + 2 nested indefinite constructed OCTET STRINGs around one chunk.
        let n = MAX_DEPTH + 2;
        let mut data = Vec::new();
        for _ in 0..n {
            push_indefinite(&mut data, OCTET_STRING_CONSTRUCTED);
        }
        push_tlv(&mut data, OCTET_STRING, &[1]);
        for _ in 0..n {
            push_end_of_contents(&mut data);
        }
        assert!(matches!(read_one(&data), Err(CmsError::Malformed(_))));

        // The same with definite lengths is caught when descending.
        let mut data = vec![];
        push_tlv(&mut data, OCTET_STRING, &[1]);
        for _ in 0..n {
            let mut outer = vec![];
            push_tlv(&mut outer, OCTET_STRING_CONSTRUCTED, &data);
            data = outer;
        }
        assert!(matches!(read_one(&data), Err(CmsError::Malformed(_))));

        // Shallow nesting is fine.
        let mut data = Vec::new();
        for _ in 0..4 {
            push_indefinite(&mut data, OCTET_STRING_CONSTRUCTED);
        }
        push_tlv(&mut data, OCTET_STRING, &[1]);
        for _ in 0..4 {
            push_end_of_contents(&mut data);
        }
        assert_eq!(read_one(&data).unwrap().1, vec![1]);
    }

    #[test]
    fn writer_lengths_are_minimal() {
        for (len, header) in [
            (0usize, vec![0x04, 0x00]),
            (0x7F, vec![0x04, 0x7F]),
            (0x80, vec![0x04, 0x81, 0x80]),
            (0x100, vec![0x04, 0x82, 0x01, 0x00]),
            (0x1_0000, vec![0x04, 0x83, 0x01, 0x00, 0x00]),
        ] {
            let mut out = Vec::new();
            push_tlv(&mut out, OCTET_STRING, &vec![0; len]);
            assert_eq!(&out[..header.len()], &header[..]);
            assert_eq!(read_one(&out).unwrap().1.len(), len);
        }
    }
}
