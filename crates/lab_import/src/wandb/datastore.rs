//! W&B's `.wandb` file: the "datastore", the log format of `LevelDB` with a header.
//!
//! ```text
//! header   ":W&B" (4 bytes), magic 0xBEE1 (u16 LE), version 0 (u8)
//! then     32 KiB blocks (the header is in the first), each a run of chunks:
//! chunk    crc (u32 LE), length (u16 LE), type (u8), data[length]
//! ```
//!
//! The CRC is CRC-32 (IEEE, as zlib's) of the type byte followed by the
//! data. A record is one FULL chunk, or a FIRST, any MIDDLEs and a LAST; a
//! chunk never crosses a block, and fewer than 7 bytes left at the end of a
//! block are zero padding. A writer may also leave a whole block's rest
//! zeroed (a chunk header of zeros).

/// The first bytes of every `.wandb` file.
pub const IDENT: &[u8; 4] = b":W&B";
/// The magic number after it.
pub const MAGIC: u16 = 0xBEE1;
/// The only version there is.
pub const VERSION: u8 = 0;
/// Header and chunk header are both 7 bytes.
pub const HEADER_LEN: usize = 7;
/// Blocks are 32 KiB.
pub const BLOCK: usize = 32 * 1024;

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// What a file holds.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Every whole record, in order.
    pub records: Vec<Vec<u8>>,
    /// Set when the file ends inside a record (a writer still writing, or
    /// killed): what was cut off.
    pub cut_tail: Option<String>,
}

/// Why a file cannot be read: it is not a datastore, or it is damaged.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The header is not W&B's.
    NotDatastore(String),
    /// A chunk is damaged (its CRC, its type, its length).
    Damaged {
        /// Where, in bytes from the start of the file.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotDatastore(why) => write!(f, "it is not a W&B run file: {why}"),
            DecodeError::Damaged { offset, reason } => {
                write!(f, "it is damaged at byte {offset}: {reason}")
            }
        }
    }
}

/// The CRC of a chunk: CRC-32 of its type byte, then its data.
#[must_use]
pub fn chunk_crc(kind: u8, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(data);
    h.finalize()
}

/// Decodes a whole file.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::NotDatastore(format!(
            "it has {} bytes, fewer than a header's {HEADER_LEN}",
            bytes.len()
        )));
    }
    if &bytes[..4] != IDENT {
        return Err(DecodeError::NotDatastore(
            "it does not start with `:W&B`".into(),
        ));
    }
    let magic = u16::from_le_bytes([bytes[4], bytes[5]]);
    if magic != MAGIC || bytes[6] != VERSION {
        return Err(DecodeError::NotDatastore(format!(
            "its header has magic {magic:#06x} and version {}, not {MAGIC:#06x} and {VERSION}",
            bytes[6]
        )));
    }
    let mut out = Decoded::default();
    let mut at = HEADER_LEN;
    // The record being put together from FIRST/MIDDLE chunks, and where it began.
    let mut partial: Option<(Vec<u8>, usize)> = None;
    loop {
        let left_in_block = BLOCK - at % BLOCK;
        if left_in_block < HEADER_LEN {
            at += left_in_block;
        }
        if at >= bytes.len() {
            break;
        }
        if at + HEADER_LEN > bytes.len() {
            out.cut_tail = Some(format!("a chunk header cut short at byte {at}"));
            break;
        }
        let crc = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let len = u16::from_le_bytes([bytes[at + 4], bytes[at + 5]]) as usize;
        let kind = bytes[at + 6];
        if crc == 0 && len == 0 && kind == 0 {
            // A zeroed rest of block: the writer moved on to the next one,
            // unless every byte to the end is zero (space written ahead).
            let next = at + BLOCK - at % BLOCK;
            if bytes[at..next.min(bytes.len())].iter().any(|b| *b != 0) {
                return Err(DecodeError::Damaged {
                    offset: at,
                    reason: "a zero chunk header before data in the same block".into(),
                });
            }
            at = next;
            continue;
        }
        let data_at = at + HEADER_LEN;
        if at % BLOCK + HEADER_LEN + len > BLOCK {
            return Err(DecodeError::Damaged {
                offset: at,
                reason: format!("a chunk of {len} bytes runs past the end of its block"),
            });
        }
        if data_at + len > bytes.len() {
            out.cut_tail = Some(format!(
                "a chunk of {len} bytes at byte {at} cut short by the end of the file"
            ));
            break;
        }
        let data = &bytes[data_at..data_at + len];
        if chunk_crc(kind, data) != crc {
            return Err(DecodeError::Damaged {
                offset: at,
                reason: "a chunk's CRC does not match its data".into(),
            });
        }
        match (kind, partial.as_mut()) {
            (FULL, None) => out.records.push(data.to_vec()),
            (FIRST, None) => partial = Some((data.to_vec(), at)),
            (MIDDLE, Some((rec, _))) => rec.extend_from_slice(data),
            (LAST, Some(_)) => {
                if let Some((mut rec, _)) = partial.take() {
                    rec.extend_from_slice(data);
                    out.records.push(rec);
                }
            }
            (FULL | FIRST, Some(_)) | (MIDDLE | LAST, None) | (_, _) => {
                return Err(DecodeError::Damaged {
                    offset: at,
                    reason: format!("a chunk of type {kind} where it cannot be"),
                });
            }
        }
        at = data_at + len;
    }
    if let Some((_, began)) = partial
        && out.cut_tail.is_none()
    {
        out.cut_tail = Some(format!("a record begun at byte {began} has no end"));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes records the way W&B's writer does.
    pub(crate) fn encode(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(IDENT);
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(VERSION);
        for rec in records {
            let mut rest: &[u8] = rec;
            let mut first = true;
            loop {
                let left = BLOCK - out.len() % BLOCK;
                if left < HEADER_LEN {
                    out.resize(out.len() + left, 0);
                    continue;
                }
                let room = left - HEADER_LEN;
                let take = rest.len().min(room);
                let last = take == rest.len();
                let kind = match (first, last) {
                    (true, true) => FULL,
                    (true, false) => FIRST,
                    (false, false) => MIDDLE,
                    (false, true) => LAST,
                };
                let data = &rest[..take];
                out.extend_from_slice(&chunk_crc(kind, data).to_le_bytes());
                out.extend_from_slice(&(take as u16).to_le_bytes());
                out.push(kind);
                out.extend_from_slice(data);
                rest = &rest[take..];
                first = false;
                if last {
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn records_small_and_spanning_blocks_come_back() {
        let records: Vec<Vec<u8>> = vec![
            b"one".to_vec(),
            vec![7u8; 100_000],
            vec![],
            (0..40_000u32).map(|i| i as u8).collect(),
            b"last".to_vec(),
        ];
        let bytes = encode(&records);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.records, records);
        assert_eq!(decoded.cut_tail, None);
    }

    #[test]
    fn padding_of_fewer_than_seven_bytes_is_skipped() {
        // A first record that leaves 3 bytes at the end of the first block.
        let first = vec![1u8; BLOCK - HEADER_LEN - HEADER_LEN - 3];
        let records = vec![first, b"next".to_vec()];
        let bytes = encode(&records);
        assert_eq!(decode(&bytes).unwrap().records, records);
    }

    #[test]
    fn the_crc_is_zlibs_of_type_and_data() {
        // zlib.crc32(b"\x01abc")
        assert_eq!(chunk_crc(1, b"abc"), 0x539d_20a9);
    }

    #[test]
    fn a_flipped_bit_is_damage_and_says_where() {
        let mut bytes = encode(&[b"hello".to_vec(), b"world".to_vec()]);
        let n = bytes.len();
        bytes[n - 2] ^= 0x10;
        let err = decode(&bytes).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Damaged {
                offset: 19,
                reason: "a chunk's CRC does not match its data".into()
            }
        );
        assert!(err.to_string().contains("byte 19"), "{err}");
    }

    #[test]
    fn a_cut_file_keeps_its_whole_records() {
        let bytes = encode(&[b"hello".to_vec(), vec![9u8; 50_000]]);
        let decoded = decode(&bytes[..bytes.len() - 10]).unwrap();
        assert_eq!(decoded.records, vec![b"hello".to_vec()]);
        assert!(decoded.cut_tail.is_some());
        let decoded = decode(&bytes[..15]).unwrap();
        assert!(decoded.records.is_empty());
        assert!(decoded.cut_tail.is_some());
    }

    #[test]
    fn other_files_are_not_datastores() {
        assert!(matches!(
            decode(b"PK\x03\x04 a zip"),
            Err(DecodeError::NotDatastore(_))
        ));
        assert!(matches!(decode(b":W&"), Err(DecodeError::NotDatastore(_))));
        assert!(matches!(
            decode(b":W&B\x00\x00\x00"),
            Err(DecodeError::NotDatastore(_))
        ));
    }
}
