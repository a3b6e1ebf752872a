//! Opens an image or layer file as its uncompressed tar stream. The format is told by magic bytes,
//! never by the file name: images live in the store under content-addressed names.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use crate::errors::{Code, Context, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// Every compression the addon reads, as `podlog version` lists them.
pub const ALL: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Bzip2,
    Compression::Xz,
    Compression::Zstd,
];

const MAGIC: [(Compression, &[u8]); 4] = [
    (Compression::Gzip, &[0x1f, 0x8b]),
    (Compression::Bzip2, b"BZh"),
    (Compression::Xz, &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
    (Compression::Zstd, &[0x28, 0xb5, 0x2f, 0xfd]),
];

const BLOCK: usize = 512;
/// Large enough that a plain tar's file data is read straight into the extractor's buffer.
const READ_BUFFER: usize = 256 * 1024;

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// `head` is the start of the file, up to one tar block.
    pub fn detect(head: &[u8]) -> Result<Compression> {
        if let Some((c, _)) = MAGIC.iter().find(|(_, magic)| head.starts_with(magic)) {
            return Ok(*c);
        }
        if is_tar_block(head) {
            return Ok(Compression::None);
        }
        let shown: Vec<String> = head.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Err(Error::new(
            Code::Compression,
            format!(
                "unknown compression: the file starts with [{}], which is not gzip, bzip2, xz, zstd or a tar header",
                shown.join(" ")
            ),
        ))
    }
}

/// A plain tar starts with a header whose checksum holds, or with the zero block of an empty archive.
/// The checksum rather than the "ustar" magic, so that old v7 archives are recognised too.
fn is_tar_block(head: &[u8]) -> bool {
    if head.len() < BLOCK {
        return false;
    }
    let block = &head[..BLOCK];
    if block.iter().all(|b| *b == 0) {
        return true;
    }
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    tar::Header::from_byte_slice(block).cksum().ok() == Some(sum)
}

/// Opens `path` and returns its format and a reader of its bytes as they are, from the start.
pub fn open_raw(path: &Path) -> Result<(Compression, Box<dyn Read>)> {
    let file = File::open(path).context(|| format!("opening {}", path.display()))?;
    let mut file = BufReader::with_capacity(READ_BUFFER, file);
    let mut head = Vec::with_capacity(BLOCK);
    (&mut file)
        .take(BLOCK as u64)
        .read_to_end(&mut head)
        .context(|| format!("reading {}", path.display()))?;
    let compression = Compression::detect(&head)?;
    Ok((compression, Box::new(Cursor::new(head).chain(file))))
}

/// The uncompressed bytes of `raw` (read from `path`, named in messages). Multi-member gzip and bzip2
/// files and multi-stream xz files (pigz, pbzip2, pxz) are read to their end, as every decoder here
/// reads its input.
pub fn decoder(compression: Compression, raw: Box<dyn Read>, path: &Path) -> Result<Box<dyn Read>> {
    Ok(match compression {
        Compression::None => raw,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(raw)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(raw)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(raw)
                .map_err(|e| Error::io(format!("starting zstd on {}", path.display()), &e))?,
        ),
    })
}

/// Builds the compressed forms of `data` with the same crates' encoders, for tests across the crate.
#[cfg(test)]
pub fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    match c {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            let mut w = flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
            w.write_all(data).unwrap();
            w.finish().unwrap();
        }
        Compression::Bzip2 => {
            let mut w = bzip2::write::BzEncoder::new(&mut out, bzip2::Compression::default());
            w.write_all(data).unwrap();
            w.finish().unwrap();
        }
        Compression::Xz => {
            let mut w = liblzma::write::XzEncoder::new(&mut out, 6);
            w.write_all(data).unwrap();
            w.finish().unwrap();
        }
        Compression::Zstd => out = zstd::encode_all(data, 3).unwrap(),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_tar() -> Vec<u8> {
        tar::Builder::new(Vec::new()).into_inner().unwrap()
    }

    fn one_file_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "hello", &b"hi\n"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn detects_each_format_by_magic() {
        let tar = one_file_tar();
        for c in ALL {
            let data = compress(c, &tar);
            assert_eq!(
                Compression::detect(&data[..BLOCK.min(data.len())]).unwrap(),
                c
            );
        }
        assert_eq!(
            Compression::detect(&empty_tar()).unwrap(),
            Compression::None
        );
    }

    #[test]
    fn refuses_what_is_neither_compressed_nor_tar() {
        let e = Compression::detect(b"PK\x03\x04 a zip file, not an image").unwrap_err();
        assert_eq!(e.code, Code::Compression);
        assert!(e.message.contains("unknown compression"), "{e}");
        let mut not_tar = one_file_tar();
        not_tar[0] ^= 0xff;
        assert_eq!(
            Compression::detect(&not_tar).unwrap_err().code,
            Code::Compression
        );
    }
}
