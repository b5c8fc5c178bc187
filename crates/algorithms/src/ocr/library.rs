//! Tesseract's C API, loaded from its shared library when `ocr` starts, not linked at build
//! time: the default build needs no Tesseract headers or libraries, and a machine without
//! Tesseract runs every other algorithm and reports `ocr` unavailable with the command that
//! installs it. Only the few functions `ocr` calls are looked up.

use std::ffi::{CStr, CString, c_char, c_int, c_uchar, c_void};
use std::path::PathBuf;
use std::sync::Arc;

/// What the runner's log, `/v1/algorithms` and the demo say when Tesseract is missing.
pub const INSTALL_HINT: &str = "install it with `sudo apt-get install tesseract-ocr \
     tesseract-ocr-eng` (Debian, Ubuntu), `brew install tesseract` (macOS), or point \
     --tesseract-library at a libtesseract";

/// Names tried in order when no path is configured: the dynamic loader searches its usual
/// directories (and `LD_LIBRARY_PATH`) for each.
const LIBRARY_NAMES: [&str; 5] = [
    "libtesseract.so.5",
    "libtesseract.so.4",
    "libtesseract.so",
    "libtesseract.5.dylib",
    "libtesseract.dylib",
];

type Handle = *mut c_void;

/// The loaded library and the functions `ocr` uses. Engines hold an `Arc` of it, so it is
/// unloaded only after the last engine is deleted.
pub struct TesseractLibrary {
    create: unsafe extern "C" fn() -> Handle,
    delete: unsafe extern "C" fn(Handle),
    init3: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    set_image: unsafe extern "C" fn(Handle, *const c_uchar, c_int, c_int, c_int, c_int),
    set_source_resolution: unsafe extern "C" fn(Handle, c_int),
    recognize: unsafe extern "C" fn(Handle, *mut c_void) -> c_int,
    get_tsv_text: unsafe extern "C" fn(Handle, c_int) -> *mut c_char,
    delete_text: unsafe extern "C" fn(*const c_char),
    /// Tesseract's version, for the log line that says which library serves.
    pub version: String,
    /// Where it was loaded from (the name the loader resolved, or the configured path).
    pub source: String,
    // Last: the function pointers above point into it.
    _library: libloading::Library,
}

/// Tesseract could not be loaded: not installed, or not the library asked for.
#[derive(Debug, thiserror::Error)]
#[error("Tesseract is not available ({tried}); {INSTALL_HINT}")]
pub struct LibraryError {
    tried: String,
}

/// Which Tesseract, from where; the rest are function pointers.
impl std::fmt::Debug for TesseractLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TesseractLibrary")
            .field("version", &self.version)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TesseractLibrary {
    /// Loads `configured`, or the first of the usual names the dynamic loader finds.
    pub fn load(configured: Option<&PathBuf>) -> Result<Arc<Self>, LibraryError> {
        let candidates: Vec<String> = match configured {
            Some(path) => vec![path.to_string_lossy().into_owned()],
            None => LIBRARY_NAMES.iter().map(|name| name.to_string()).collect(),
        };
        let mut tried = Vec::new();
        for candidate in candidates {
            // SAFETY: loading runs the library's initialisers; libtesseract's only set up its
            // own globals.
            match unsafe { libloading::Library::new(&candidate) } {
                Ok(library) => {
                    return Self::bind(library, candidate.clone()).map_err(|error| LibraryError {
                        tried: format!("{candidate}: {error}"),
                    });
                }
                Err(error) => tried.push(format!("{candidate}: {error}")),
            }
        }
        Err(LibraryError {
            tried: tried.join("; "),
        })
    }

    fn bind(library: libloading::Library, source: String) -> Result<Arc<Self>, libloading::Error> {
        // SAFETY: each symbol is declared with the signature of Tesseract's capi.h (stable
        // since 3.02), and the pointers never outlive `_library`, which the struct owns.
        unsafe {
            let version: unsafe extern "C" fn() -> *const c_char = *library.get(b"TessVersion")?;
            let version = CStr::from_ptr(version()).to_string_lossy().into_owned();
            Ok(Arc::new(TesseractLibrary {
                create: *library.get(b"TessBaseAPICreate")?,
                delete: *library.get(b"TessBaseAPIDelete")?,
                init3: *library.get(b"TessBaseAPIInit3")?,
                set_image: *library.get(b"TessBaseAPISetImage")?,
                set_source_resolution: *library.get(b"TessBaseAPISetSourceResolution")?,
                recognize: *library.get(b"TessBaseAPIRecognize")?,
                get_tsv_text: *library.get(b"TessBaseAPIGetTsvText")?,
                delete_text: *library.get(b"TessDeleteText")?,
                version,
                source,
                _library: library,
            }))
        }
    }
}

/// One initialised Tesseract engine for one language setting. Tesseract's engine may move
/// between threads but must not be used by two at once: `Engine` is `Send`, not `Sync`, and
/// every method takes `&mut self`.
pub struct Engine {
    library: Arc<TesseractLibrary>,
    handle: Handle,
}

// SAFETY: a TessBaseAPI has no thread affinity; `&mut self` on every call rules out sharing.
unsafe impl Send for Engine {}

/// Tesseract refused: an initialisation or a recognition failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineFailure {
    /// `TessBaseAPIInit3` refused the language or data path.
    #[error("cannot load language '{language}' from {datapath}")]
    Init {
        /// The language setting, e.g. `eng+deu`.
        language: String,
        /// The tessdata directory.
        datapath: String,
    },
    /// `TessBaseAPIRecognize` failed.
    #[error("recognition failed")]
    Recognize,
    /// The image's sides do not fit Tesseract's `int` arguments.
    #[error("an image of {width}x{height} is too large for Tesseract")]
    TooLarge {
        /// In pixels.
        width: u32,
        /// In pixels.
        height: u32,
    },
    /// A string cannot be passed to C.
    #[error("a path or language contains a NUL byte")]
    Nul,
}

/// The engine is an opaque handle: the library serving it is what can be shown.
impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("library", &self.library)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// `TessBaseAPIInit3`: reads `<datapath>/<language>.traineddata` (languages joined by `+`).
    pub fn new(
        library: &Arc<TesseractLibrary>,
        datapath: &str,
        language: &str,
    ) -> Result<Self, EngineFailure> {
        let c_datapath = CString::new(datapath).map_err(|_| EngineFailure::Nul)?;
        let c_language = CString::new(language).map_err(|_| EngineFailure::Nul)?;
        // SAFETY: create returns an owned handle, deleted in Drop (also when Init3 fails).
        let engine = Engine {
            library: library.clone(),
            handle: unsafe { (library.create)() },
        };
        // SAFETY: both strings outlive the call; Tesseract copies what it keeps.
        let status =
            unsafe { (library.init3)(engine.handle, c_datapath.as_ptr(), c_language.as_ptr()) };
        if status != 0 {
            return Err(EngineFailure::Init {
                language: language.to_owned(),
                datapath: datapath.to_owned(),
            });
        }
        Ok(engine)
    }

    /// Recognises an 8-bit grey image (`width * height` bytes, rows tightly packed) reported at
    /// `ppi` pixels per inch, and returns Tesseract's TSV.
    pub fn tsv(
        &mut self,
        pixels: &[u8],
        width: u32,
        height: u32,
        ppi: i32,
    ) -> Result<String, EngineFailure> {
        let too_large = EngineFailure::TooLarge { width, height };
        let (Ok(w), Ok(h)) = (c_int::try_from(width), c_int::try_from(height)) else {
            return Err(too_large);
        };
        if pixels.len() != (width as usize) * (height as usize) {
            return Err(too_large);
        }
        let library = &self.library;
        // SAFETY: `pixels` holds `h` rows of `w` bytes and outlives the recognition below,
        // which is the only call that reads it (Tesseract copies the image in SetImage).
        unsafe {
            (library.set_image)(self.handle, pixels.as_ptr(), w, h, 1, w);
            (library.set_source_resolution)(self.handle, ppi);
            if (library.recognize)(self.handle, std::ptr::null_mut()) != 0 {
                return Err(EngineFailure::Recognize);
            }
            let text = (library.get_tsv_text)(self.handle, 0);
            if text.is_null() {
                return Err(EngineFailure::Recognize);
            }
            let tsv = CStr::from_ptr(text).to_string_lossy().into_owned();
            (library.delete_text)(text);
            Ok(tsv)
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the handle came from create and is deleted once, here.
        unsafe { (self.library.delete)(self.handle) }
    }
}
