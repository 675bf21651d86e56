//! The file-system loader: the one place in the compiler library that reads files, used by the
//! CLI. Everything else goes through [`crate::source::Loader`], which clippy enforces (see
//! `compiler/clippy.toml`).

use std::path::{Path, PathBuf};

use crate::source::{LoadError, Loader};

/// Reads files relative to a base directory.
#[derive(Debug, Clone)]
pub struct FsLoader {
    base: PathBuf,
}

impl FsLoader {
    pub fn new(base: impl Into<PathBuf>) -> FsLoader {
        FsLoader { base: base.into() }
    }
}

impl Loader for FsLoader {
    #[allow(clippy::disallowed_methods, reason = "this loader is the compiler's one door to the file system")]
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        let full = self.base.join(path);
        // Only regular files: reading a FIFO or a device could block for ever.
        match std::fs::metadata(&full) {
            Ok(m) if m.is_dir() => return Err(LoadError::Unreadable("it is a directory".into())),
            Ok(m) if !m.is_file() => return Err(LoadError::Unreadable("it is not a regular file".into())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::NotFound),
            Err(e) => return Err(LoadError::Unreadable(e.to_string())),
        }
        match std::fs::read(&full) {
            Ok(bytes) => {
                String::from_utf8(bytes).map_err(|_| LoadError::Unreadable("the file is not valid UTF-8".into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LoadError::NotFound),
            Err(e) if full.is_dir() => Err(LoadError::Unreadable(format!("it is a directory ({e})"))),
            Err(e) => Err(LoadError::Unreadable(e.to_string())),
        }
    }
}
