//! Media a run logs: images (PNG, encoded here from raw pixels, or checked
//! when a library encoded them) and tables (JSON). Each is written into the
//! run's folder as `media/<key>/<step>.png` or `.json` before the Media
//! record that names it, so a record never points at a missing file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lab_types::{MediaKind, Value};

use crate::SdkError;

/// The widest or tallest image accepted, in pixels.
pub const MAX_IMAGE_SIDE: usize = 16_384;

/// The most pixels an image may have (a 8192 x 4096 image).
pub const MAX_IMAGE_PIXELS: usize = 1 << 25;

/// The most cells (rows times columns) a table may have.
pub const MAX_TABLE_CELLS: usize = 1_000_000;

/// The most bytes a table's JSON may take.
pub const MAX_TABLE_BYTES: usize = 64 << 20;

/// The type of the numbers of a raw image, as numpy spells it (`|u1`,
/// `<f4`, ...): little-endian or single bytes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelType {
    /// `bool`: false is black, true white.
    Bool,
    /// Unsigned 8-bit: used as they are.
    U8,
    /// Other integers: each must lie in 0..=255.
    Int {
        /// Bytes per number.
        size: usize,
        /// Whether they are signed.
        signed: bool,
    },
    /// Floats: each must lie in 0..=1 (scaled to 0..=255).
    Float {
        /// Bytes per number: 4 or 8.
        size: usize,
    },
}

impl PixelType {
    /// The type numpy calls `dtype` (its `dtype.str`: `|u1`, `<f8`, ...).
    pub fn parse(dtype: &str) -> Result<Self, SdkError> {
        let bad = || {
            SdkError::InvalidArgument {
            argument: "image",
            value: format!("an array of dtype `{dtype}`"),
            problem: "must hold uint8 numbers (0 to 255), floats from 0 to 1, other integers from 0 to 255, or booleans".into(),
        }
        };
        let (order, rest) = dtype.split_at_checked(1).ok_or_else(bad)?;
        if !matches!(order, "<" | "|" | "=") {
            return Err(bad());
        }
        let (kind, size) = rest.split_at_checked(1).ok_or_else(bad)?;
        let size: usize = size.parse().map_err(|_| bad())?;
        match (kind, size) {
            ("b", 1) => Ok(PixelType::Bool),
            ("u", 1) => Ok(PixelType::U8),
            ("u", 2 | 4 | 8) => Ok(PixelType::Int {
                size,
                signed: false,
            }),
            ("i", 1 | 2 | 4 | 8) => Ok(PixelType::Int { size, signed: true }),
            ("f", 4 | 8) => Ok(PixelType::Float { size }),
            _ => Err(bad()),
        }
    }

    fn size(self) -> usize {
        match self {
            PixelType::Bool | PixelType::U8 => 1,
            PixelType::Int { size, .. } | PixelType::Float { size } => size,
        }
    }
}

/// An image as numbers: `height` rows of `width` pixels of `channels`
/// numbers each (1: grey, 3: RGB, 4: RGBA), row-major, in `data`.
pub struct RawImage<'a> {
    /// Rows.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
    /// Numbers per pixel.
    pub channels: usize,
    /// The numbers' type.
    pub pixel: PixelType,
    /// The numbers, `height * width * channels` of them.
    pub data: &'a [u8],
}

/// What one media file is, once encoded.
pub(crate) struct Encoded {
    pub kind: MediaKind,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

fn check_size(width: usize, height: usize) -> Result<(), SdkError> {
    let bad = |problem: String| SdkError::InvalidArgument {
        argument: "image",
        value: format!("an image of {width} x {height} pixels"),
        problem,
    };
    if width == 0 || height == 0 {
        return Err(bad("must have at least one pixel".into()));
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(bad(format!(
            "must be at most {MAX_IMAGE_SIDE} pixels wide and tall"
        )));
    }
    if width.saturating_mul(height) > MAX_IMAGE_PIXELS {
        return Err(bad(format!(
            "must have at most {MAX_IMAGE_PIXELS} pixels (8192 x 4096)"
        )));
    }
    Ok(())
}

/// The bytes of a raw image as 8-bit samples, refusing values out of range
/// and NaN with the first offending value and where it is.
fn samples(image: &RawImage<'_>) -> Result<Vec<u8>, SdkError> {
    let count = image.height * image.width * image.channels;
    let size = image.pixel.size();
    if image.data.len() != count * size {
        return Err(SdkError::InvalidArgument {
            argument: "image",
            value: format!("{} bytes", image.data.len()),
            problem: format!(
                "must hold {count} numbers of {size} bytes ({} x {} x {})",
                image.height, image.width, image.channels
            ),
        });
    }
    let at = |i: usize| {
        let pixel = i / image.channels;
        format!(
            "row {}, column {}",
            pixel / image.width,
            pixel % image.width
        )
    };
    let chunks = image.data.chunks_exact(size);
    match image.pixel {
        PixelType::U8 => Ok(image.data.to_vec()),
        PixelType::Bool => Ok(image
            .data
            .iter()
            .map(|&b| if b == 0 { 0 } else { 255 })
            .collect()),
        PixelType::Int { size, signed } => chunks
            .enumerate()
            .map(|(i, c)| {
                let mut buf = [0u8; 8];
                buf[..size].copy_from_slice(c);
                if signed && c[size - 1] & 0x80 != 0 {
                    buf[size..].fill(0xff);
                }
                let v = i64::from_le_bytes(buf);
                let v = if signed || size < 8 { v } else { v.max(-1) };
                u8::try_from(v).map_err(|_| SdkError::InvalidArgument {
                    argument: "image",
                    value: format!("{v} at {}", at(i)),
                    problem: "must hold integers from 0 to 255 (or floats from 0 to 1)".into(),
                })
            })
            .collect(),
        PixelType::Float { size } => chunks
            .enumerate()
            .map(|(i, c)| {
                let v = if size == 4 {
                    f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                } else {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                };
                if !(0.0..=1.0).contains(&v) {
                    return Err(SdkError::InvalidArgument {
                        argument: "image",
                        value: format!("{v} at {}", at(i)),
                        problem: "must hold floats from 0 to 1 (NaN and infinities are refused)"
                            .into(),
                    });
                }
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok((v * 255.0).round() as u8)
            })
            .collect(),
    }
}

/// Encodes raw pixels as a PNG.
pub(crate) fn encode_png(image: &RawImage<'_>) -> Result<Encoded, SdkError> {
    check_size(image.width, image.height)?;
    let color = match image.channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        n => {
            return Err(SdkError::InvalidArgument {
                argument: "image",
                value: format!("{n} channels"),
                problem: "must have 1 (grey), 3 (RGB) or 4 (RGBA) channels: a shape of (height, width), (height, width, 1), (height, width, 3) or (height, width, 4)".into(),
            });
        }
    };
    let samples = samples(image)?;
    let (width, height) = (side(image.width), side(image.height));
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(|e| png_error(&e))?;
        writer
            .write_image_data(&samples)
            .map_err(|e| png_error(&e))?;
        writer.finish().map_err(|e| png_error(&e))?;
    }
    Ok(Encoded {
        kind: MediaKind::Image,
        bytes,
        width,
        height,
    })
}

fn side(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn png_error(e: &png::EncodingError) -> SdkError {
    SdkError::Io(std::io::Error::other(format!(
        "encoding the PNG failed: {e}"
    )))
}

/// Checks a PNG a library wrote (Pillow, matplotlib): it must decode whole,
/// and its size must be within the limits.
pub(crate) fn checked_png(bytes: Vec<u8>) -> Result<Encoded, SdkError> {
    let bad = |problem: String| SdkError::InvalidArgument {
        argument: "image",
        value: format!("{} bytes of PNG", bytes.len()),
        problem,
    };
    let decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(&bytes),
        png::Limits {
            bytes: MAX_IMAGE_PIXELS * 8,
        },
    );
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("must be a PNG image ({e})")))?;
    let (width, height) = {
        let info = reader.info();
        (info.width, info.height)
    };
    check_size(width as usize, height as usize)?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("must be a whole PNG image ({e})")))?;
    Ok(Encoded {
        kind: MediaKind::Image,
        bytes,
        width,
        height,
    })
}

/// A table's JSON.
#[derive(serde::Serialize)]
struct Table<'a> {
    columns: &'a [String],
    rows: &'a [Vec<Value>],
}

/// Encodes a table as JSON `{"columns": [...], "rows": [[...], ...]}`; every
/// row must have one value per column.
pub(crate) fn encode_table(columns: &[String], rows: &[Vec<Value>]) -> Result<Encoded, SdkError> {
    let cells = columns.len().saturating_mul(rows.len());
    if columns.is_empty() {
        return Err(SdkError::InvalidArgument {
            argument: "table",
            value: "a table without columns".into(),
            problem: "must have at least one column".into(),
        });
    }
    if cells > MAX_TABLE_CELLS {
        return Err(SdkError::InvalidArgument {
            argument: "table",
            value: format!("{} rows x {} columns", rows.len(), columns.len()),
            problem: format!("must have at most {MAX_TABLE_CELLS} cells"),
        });
    }
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].contains(c) {
            return Err(SdkError::bad_text(
                "table",
                c,
                "must not name a column twice",
            ));
        }
    }
    if let Some((i, row)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != columns.len())
    {
        return Err(SdkError::InvalidArgument {
            argument: "table",
            value: format!("row {i} with {} values", row.len()),
            problem: format!("must have one value per column ({})", columns.len()),
        });
    }
    for row in rows {
        for v in row {
            crate::check_value("table", v)?;
        }
    }
    let bytes = serde_json::to_vec(&Table { columns, rows }).map_err(|e| {
        SdkError::Io(std::io::Error::other(format!(
            "writing the table failed: {e}"
        )))
    })?;
    if bytes.len() > MAX_TABLE_BYTES {
        return Err(SdkError::InvalidArgument {
            argument: "table",
            value: format!("{} bytes of JSON", bytes.len()),
            problem: format!("must take at most {} MiB as JSON", MAX_TABLE_BYTES >> 20),
        });
    }
    Ok(Encoded {
        kind: MediaKind::Table,
        bytes,
        width: side(columns.len()),
        height: side(rows.len()),
    })
}

/// Each media key's kind, and the step it takes next when none is given.
#[derive(Default)]
pub(crate) struct Steps(HashMap<String, (MediaKind, i64)>);

impl Steps {
    /// The step a file of `key` takes, moving the key's next step on. A key
    /// holds one kind of media: images, or tables.
    pub fn take(&mut self, key: &str, kind: MediaKind, step: Option<i64>) -> Result<i64, SdkError> {
        let (held, next) = self.0.entry(key.to_owned()).or_insert((kind, 0));
        if *held != kind {
            return Err(SdkError::bad_text(
                "key",
                key,
                format!(
                    "holds {}s already: log the {} under another key",
                    held.as_str(),
                    kind.as_str()
                ),
            ));
        }
        let step = step.unwrap_or(*next);
        *next = (*next).max(step.saturating_add(1));
        Ok(step)
    }
}

/// The file of `key` at `step`, relative to the run's folder.
pub(crate) fn relative_path(key: &str, step: i64, kind: MediaKind) -> String {
    let ext = match kind {
        MediaKind::Image => "png",
        MediaKind::Table => "json",
    };
    format!("media/{key}/{step}.{ext}")
}

/// Makes `dir` if it is not there, without making its parents: a run folder
/// deleted while the run is live (`lab rm --force`) stays deleted.
pub(crate) fn make_dir(dir: &Path, run: &str, run_dir: &Path) -> Result<(), SdkError> {
    match fs_err::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SdkError::RunFolderGone {
            run: run.to_owned(),
            path: run_dir.to_path_buf(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// A new temporary file in `dir` to write a media file into before it is
/// moved to its name. The process id in the name lets `lab gc` tell the
/// leftovers of a process that died.
pub(crate) fn temp_path(dir: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".media.{}-{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(data: &[u8], pixel: PixelType, h: usize, w: usize, c: usize) -> RawImage<'_> {
        RawImage {
            height: h,
            width: w,
            channels: c,
            pixel,
            data,
        }
    }

    #[test]
    fn dtypes_parse_as_numpy_spells_them() {
        assert_eq!(PixelType::parse("|u1").unwrap(), PixelType::U8);
        assert_eq!(PixelType::parse("|b1").unwrap(), PixelType::Bool);
        assert_eq!(
            PixelType::parse("<f4").unwrap(),
            PixelType::Float { size: 4 }
        );
        assert_eq!(
            PixelType::parse("<i8").unwrap(),
            PixelType::Int {
                size: 8,
                signed: true
            }
        );
        for bad in [">f4", "<c16", "<M8", "", "<", "|O", "<U3", "<f2"] {
            assert!(PixelType::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_encoded_png_decodes_to_the_same_pixels() {
        let data: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 10) as u8).collect();
        let png = encode_png(&raw(&data, PixelType::U8, 2, 3, 3)).unwrap();
        assert_eq!((png.width, png.height), (3, 2));
        let mut reader = png::Decoder::new(std::io::Cursor::new(&png.bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(&buf[..info.buffer_size()], &data[..]);
        assert!(checked_png(png.bytes).is_ok());
    }

    #[test]
    fn floats_scale_and_bad_values_are_named() {
        let floats: Vec<u8> = [0.0f32, 0.5, 1.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let s = samples(&raw(&floats, PixelType::Float { size: 4 }, 1, 3, 1)).unwrap();
        assert_eq!(s, vec![0, 128, 255]);
        let nan: Vec<u8> = [0.0f64, f64::NAN]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let e = samples(&raw(&nan, PixelType::Float { size: 8 }, 1, 2, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN at row 0, column 1"), "{e}");
        let ints: Vec<u8> = [3i16, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let e = samples(&raw(
            &ints,
            PixelType::Int {
                size: 2,
                signed: true,
            },
            1,
            2,
            1,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("-1 at row 0, column 1"), "{e}");
        let big: Vec<u8> = u64::MAX.to_le_bytes().to_vec();
        let e = samples(&raw(
            &big,
            PixelType::Int {
                size: 8,
                signed: false,
            },
            1,
            1,
            1,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("from 0 to 255"), "{e}");
    }

    #[test]
    fn sizes_and_channels_are_checked() {
        assert!(encode_png(&raw(&[], PixelType::U8, 0, 3, 1)).is_err());
        assert!(encode_png(&raw(&[0; 4], PixelType::U8, 1, 2, 2)).is_err());
        assert!(encode_png(&raw(&[0; 3], PixelType::U8, 1, 2, 1)).is_err());
        assert!(check_size(MAX_IMAGE_SIDE + 1, 1).is_err());
        assert!(check_size(8192, 4097).is_err());
        assert!(check_size(8192, 4096).is_ok());
        assert!(checked_png(b"\x89PNG\r\n\x1a\nnot really".to_vec()).is_err());
    }

    #[test]
    fn tables_are_checked_and_written_as_json() {
        let cols = vec!["a".to_owned(), "b".to_owned()];
        let rows = vec![
            vec![Value::Int(1), Value::Str("x".into())],
            vec![Value::Float(f64::NAN), Value::Null],
        ];
        let t = encode_table(&cols, &rows).unwrap();
        assert_eq!((t.width, t.height), (2, 2));
        assert_eq!(
            String::from_utf8(t.bytes).unwrap(),
            r#"{"columns":["a","b"],"rows":[[1,"x"],["NaN",null]]}"#
        );
        assert!(encode_table(&cols, &[vec![Value::Int(1)]]).is_err());
        assert!(encode_table(&[], &[]).is_err());
        assert!(encode_table(&["a".into(), "a".into()], &[]).is_err());
    }

    #[test]
    fn steps_count_on_per_key() {
        let mut s = Steps::default();
        let image = MediaKind::Image;
        assert_eq!(s.take("a", image, None).unwrap(), 0);
        assert_eq!(s.take("a", image, None).unwrap(), 1);
        assert_eq!(s.take("b", image, Some(10)).unwrap(), 10);
        assert_eq!(s.take("b", image, None).unwrap(), 11);
        assert_eq!(s.take("a", image, Some(0)).unwrap(), 0);
        assert_eq!(s.take("a", image, None).unwrap(), 2);
        let e = s.take("a", MediaKind::Table, None).unwrap_err().to_string();
        assert_eq!(
            e,
            "`key` holds images already: log the table under another key: got \"a\""
        );
    }
}
