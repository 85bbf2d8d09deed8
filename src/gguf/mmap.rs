//! Native only: a memory-mapped GGUF file, parsed once, handing out tensor data as slices.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::{Gguf, GgufError, TensorInfo};

/// A memory-mapped GGUF file with its parsed header.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    gguf: Gguf,
}

impl GgufFile {
    /// Maps and parses the file, checking every tensor's data lies within it.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| GgufError::Io {
            path: path.clone(),
            source: Arc::new(source),
        };
        if path.is_dir() {
            return Err(GgufError::IsDirectory { path });
        }
        let file = File::open(&path).map_err(io_err)?;
        // SAFETY: the map is read-only and private to this value. If another process
        // truncates or rewrites the file while it is mapped, reads may see the new bytes or
        // fault (SIGBUS); that is the accepted cost of mapping model files, as every GGUF
        // runtime does. Parsing itself never trusts the bytes.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        let gguf = Gguf::parse(&map).map_err(|e| GgufError::InFile {
            path: path.clone(),
            source: Box::new(e),
        })?;
        Ok(GgufFile { path, map, gguf })
    }

    /// The parsed header.
    pub fn gguf(&self) -> &Gguf {
        &self.gguf
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// A tensor's raw data (bounds-checked, so a [`TensorInfo`] from another file errors
    /// rather than reading past the end).
    pub fn tensor_data(&self, t: &TensorInfo) -> Result<&[u8], GgufError> {
        self.gguf.tensor_data(&self.map, t)
    }

    /// The info and raw data of the tensor named `name`.
    pub fn tensor_by_name(&self, name: &str) -> Result<(&TensorInfo, &[u8]), GgufError> {
        let t = self.gguf.require_tensor(name)?;
        Ok((t, self.tensor_data(t)?))
    }
}
