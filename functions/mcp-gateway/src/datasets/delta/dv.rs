//! Delta Lake deletion vectors: which rows of a data file a table no longer holds.
//!
//! A deletion vector is a 64-bit RoaringBitmap array (the "portable" serialization, behind a magic
//! number) stored inline in the log (Z85 text) or in a `deletion_vector_<uuid>.bin` file beside the
//! data (version byte, then per vector: big-endian size, the bitmap, a CRC-32). Decoded here into
//! sorted `[start, end)` row ranges for the scan.

use roaring::RoaringBitmap;
use serde::Deserialize;

use super::DeltaError;

/// The `deletionVector` of an `add` or `remove` action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Descriptor {
    /// `u` (file named by a UUID, relative to the table), `i` (inline) or `p` (absolute path).
    pub storage_type: String,
    /// The UUID (with an optional random prefix), the inline data, or the path, per the type.
    pub path_or_inline_dv: String,
    /// Where the vector starts in its file (absent inline).
    pub offset: Option<i64>,
    /// Size of the serialized vector.
    pub size_in_bytes: i64,
    /// Number of deleted rows.
    pub cardinality: i64,
}

/// The magic number in front of a serialized RoaringBitmapArray (little-endian).
const MAGIC: u32 = 1_681_511_377;
/// The largest deletion vector read (the bitmap of 2^31 scattered rows is far smaller).
pub(super) const MAX_DV_BYTES: i64 = 64 << 20;

/// Where a descriptor's bytes are.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Location {
    /// The serialized vector itself (inline).
    Inline(Vec<u8>),
    /// `len` bytes at `offset` of the file at `path` (relative to the table folder). The first
    /// 4 bytes there are the size, then the vector.
    File { path: String, offset: u64, len: u64 },
}

impl Descriptor {
    /// A key telling two vectors of the same file apart (the log's file identity is the path plus
    /// this).
    pub(super) fn unique_id(&self) -> String {
        match self.offset {
            Some(offset) => format!("{}{}@{offset}", self.storage_type, self.path_or_inline_dv),
            None => format!("{}{}", self.storage_type, self.path_or_inline_dv),
        }
    }

    /// Where the vector's bytes are, checked against the size bound.
    pub(super) fn location(&self) -> Result<Location, DeltaError> {
        if !(0..=MAX_DV_BYTES).contains(&self.size_in_bytes) {
            return Err(DeltaError::Corrupt(format!(
                "a deletion vector of {} bytes (the limit is {MAX_DV_BYTES})",
                self.size_in_bytes
            )));
        }
        match self.storage_type.as_str() {
            "i" => Ok(Location::Inline(z85_decode(&self.path_or_inline_dv)?)),
            "u" => {
                let text = &self.path_or_inline_dv;
                let split = text.len().checked_sub(20).filter(|&at| text.is_char_boundary(at)).ok_or_else(|| {
                    DeltaError::Corrupt(format!("deletion vector id `{text}` is shorter than a Z85 UUID"))
                })?;
                let (prefix, encoded) = text.split_at(split);
                let uuid = z85_decode(encoded)?;
                let digits = hex::encode(uuid);
                let name = format!(
                    "deletion_vector_{}-{}-{}-{}-{}.bin",
                    &digits[0..8],
                    &digits[8..12],
                    &digits[12..16],
                    &digits[16..20],
                    &digits[20..32]
                );
                let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
                let offset = u64::try_from(self.offset.unwrap_or(1))
                    .map_err(|_| DeltaError::Corrupt("a negative deletion vector offset".into()))?;
                // The size field (4 bytes) comes first.
                Ok(Location::File { path, offset, len: self.size_in_bytes.unsigned_abs() + 4 })
            }
            "p" => Err(DeltaError::Unsupported("deletion vectors stored at absolute paths (storage type `p`)".into())),
            other => Err(DeltaError::Corrupt(format!("unknown deletion vector storage type `{other}`"))),
        }
    }
}

/// The rows a serialized vector deletes, as sorted `[start, end)` ranges. `framed` bytes come from
/// a file (a big-endian size first); inline ones do not.
pub(super) fn deleted_ranges(bytes: &[u8], framed: bool, cardinality: i64) -> Result<Vec<(u64, u64)>, DeltaError> {
    let corrupt = |what: &str| DeltaError::Corrupt(format!("deletion vector: {what}"));
    let data = if framed {
        let (size, rest) = bytes.split_first_chunk::<4>().ok_or_else(|| corrupt("cut short"))?;
        let size = u32::from_be_bytes(*size) as usize;
        rest.get(..size).ok_or_else(|| corrupt("shorter than its size field"))?
    } else {
        bytes
    };
    let (magic, mut rest) = data.split_first_chunk::<4>().ok_or_else(|| corrupt("cut short"))?;
    if u32::from_le_bytes(*magic) != MAGIC {
        return Err(corrupt("not a RoaringBitmapArray (wrong magic number)"));
    }
    let (count, tail) = rest.split_first_chunk::<8>().ok_or_else(|| corrupt("cut short"))?;
    rest = tail;
    let count = u64::from_le_bytes(*count);
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut seen: u64 = 0;
    for _ in 0..count {
        let (key, tail) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("cut short"))?;
        let high = u64::from(u32::from_le_bytes(*key)) << 32;
        let mut reader = std::io::Cursor::new(tail);
        let bitmap = RoaringBitmap::deserialize_from(&mut reader).map_err(|error| corrupt(&error.to_string()))?;
        rest = &tail[usize::try_from(reader.position()).unwrap_or(tail.len())..];
        seen += bitmap.len();
        for row in bitmap {
            let row = high | u64::from(row);
            match ranges.last_mut() {
                Some((_, end)) if *end == row => *end += 1,
                _ => ranges.push((row, row + 1)),
            }
        }
    }
    if i64::try_from(seen).ok() != Some(cardinality) {
        return Err(corrupt(&format!("holds {seen} rows where the log says {cardinality}")));
    }
    Ok(ranges)
}

/// Decodes Z85 (ZeroMQ's base-85), in which the log writes UUIDs and inline vectors.
fn z85_decode(text: &str) -> Result<Vec<u8>, DeltaError> {
    const ALPHABET: &[u8; 85] =
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if !text.len().is_multiple_of(5) {
        return Err(DeltaError::Corrupt(format!("`{text}` is not Z85 (its length is not a multiple of 5)")));
    }
    let mut out = Vec::with_capacity(text.len() / 5 * 4);
    for chunk in text.as_bytes().chunks(5) {
        let mut value: u64 = 0;
        for &byte in chunk {
            let digit = ALPHABET
                .iter()
                .position(|&c| c == byte)
                .ok_or_else(|| DeltaError::Corrupt(format!("`{text}` is not Z85")))?;
            value = value * 85 + digit as u64;
        }
        let value = u32::try_from(value).map_err(|_| DeltaError::Corrupt(format!("`{text}` is not Z85")))?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z85_decodes_the_reference_vector() {
        // The example of the Z85 specification (ZeroMQ RFC 32).
        assert_eq!(z85_decode("HelloWorld").ok(), Some(vec![0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]));
        assert!(z85_decode("Hello").is_ok() && z85_decode("Hell").is_err() && z85_decode("Hell~").is_err());
    }

    /// The descriptor of the Databricks-written table in tests/e2e/fixtures/delta/table-with-dv-small.
    #[test]
    fn uuid_descriptors_name_their_file() {
        let descriptor = Descriptor {
            storage_type: "u".into(),
            path_or_inline_dv: "vBn[lx{q8@P<9BNH/isA".into(),
            offset: Some(1),
            size_in_bytes: 36,
            cardinality: 2,
        };
        assert_eq!(
            descriptor.location().ok(),
            Some(Location::File {
                path: "deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin".into(),
                offset: 1,
                len: 40
            })
        );
        let prefixed = Descriptor { path_or_inline_dv: "ab vBn[lx{q8@P<9BNH/isA".replace(' ', ""), ..descriptor };
        assert!(
            matches!(prefixed.location(), Ok(Location::File { path, .. }) if path.starts_with("ab/deletion_vector_"))
        );
    }

    #[test]
    fn vectors_decode_to_row_ranges_and_check_their_cardinality() {
        let mut bitmap = RoaringBitmap::new();
        bitmap.extend([0u32, 1, 2, 9, 100]);
        let mut data = MAGIC.to_le_bytes().to_vec();
        data.extend(1u64.to_le_bytes());
        data.extend(0u32.to_le_bytes());
        bitmap.serialize_into(&mut data).ok();
        assert_eq!(deleted_ranges(&data, false, 5).ok(), Some(vec![(0, 3), (9, 10), (100, 101)]));
        let mut framed = (data.len() as u32).to_be_bytes().to_vec();
        framed.extend(&data);
        framed.extend([0, 0, 0, 0]); // the CRC
        assert_eq!(deleted_ranges(&framed, true, 5).ok(), Some(vec![(0, 3), (9, 10), (100, 101)]));
        assert!(deleted_ranges(&data, false, 4).is_err(), "a cardinality that disagrees is corruption");
        assert!(deleted_ranges(&data[..10], false, 5).is_err());
        assert!(deleted_ranges(b"\0\0\0\0\0\0\0\0\0\0\0\0", false, 0).is_err(), "wrong magic");
    }
}
