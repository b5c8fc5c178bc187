//! Where Tesseract's language models (`<lang>.traineddata`) are, and which are installed.
//!
//! The directory is found once and then always passed to Tesseract explicitly, so the languages
//! listed to a caller are exactly those Tesseract can load.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use switchyard_runner::AlgorithmError;

/// Where distributions put the models, newest Tesseract first.
const USUAL_DIRS: [&str; 7] = [
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tesseract/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
    "/opt/local/share/tessdata",
];

/// Orientation and script detection: installed beside the languages, but it reads no text.
const NOT_A_LANGUAGE: &str = "osd";

/// The language models of one directory.
#[derive(Debug, Clone)]
pub struct Tessdata {
    dir: PathBuf,
    languages: BTreeSet<String>,
}

/// No usable model directory.
#[derive(Debug, thiserror::Error)]
pub enum TessdataError {
    #[error(
        "no Tesseract language data found (looked in {looked}); install it with `sudo apt-get install tesseract-ocr-eng` (Debian, Ubuntu) or set --tessdata-dir"
    )]
    /// No directory with language data was found.
    NotFound {
        /// The places looked in, for the message.
        looked: String,
    },
    /// The tessdata directory exists but cannot be listed.
    #[error("cannot read the tessdata directory {}: {source}", dir.display())]
    Unreadable {
        /// The directory.
        dir: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The directory holds no `*.traineddata`.
    #[error("the tessdata directory {} holds no language model (*.traineddata)", .0.display())]
    Empty(PathBuf),
}

/// A language a caller asked for that is not installed: the request's fault, a 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("OCR language '{requested}' is not installed; installed: {}", installed.join(", "))]
pub struct UnknownOcrLanguage {
    /// The language setting asked for, e.g. `eng+deu`.
    pub requested: String,
    /// The languages the tessdata directory has.
    pub installed: Vec<String>,
}

impl From<UnknownOcrLanguage> for AlgorithmError {
    fn from(error: UnknownOcrLanguage) -> Self {
        AlgorithmError::bad_input(error.to_string())
    }
}

impl Tessdata {
    /// `configured`, else `TESSDATA_PREFIX` (Tesseract's own variable), else the first usual
    /// directory that exists.
    pub fn locate(configured: Option<&Path>) -> Result<Self, TessdataError> {
        if let Some(dir) = configured {
            return Self::open(dir);
        }
        let from_env = std::env::var_os("TESSDATA_PREFIX").map(PathBuf::from);
        let candidates: Vec<PathBuf> = from_env
            .iter()
            // Tesseract 3 wanted the parent of `tessdata`; accept both spellings.
            .flat_map(|prefix| [prefix.join("tessdata"), prefix.clone()])
            .chain(USUAL_DIRS.iter().map(PathBuf::from))
            .collect();
        match candidates.iter().find(|dir| dir.is_dir()) {
            Some(dir) => Self::open(dir),
            None => Err(TessdataError::NotFound {
                looked: candidates
                    .iter()
                    .map(|dir| dir.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    fn open(dir: &Path) -> Result<Self, TessdataError> {
        let unreadable = |source| TessdataError::Unreadable {
            dir: dir.to_path_buf(),
            source,
        };
        let mut languages = BTreeSet::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable)? {
            let path = entry.map_err(unreadable)?.path();
            if path.extension().is_some_and(|ext| ext == "traineddata")
                && let Some(stem) = path.file_stem().and_then(|stem| stem.to_str())
                && stem != NOT_A_LANGUAGE
            {
                languages.insert(stem.to_string());
            }
        }
        if languages.is_empty() {
            return Err(TessdataError::Empty(dir.to_path_buf()));
        }
        Ok(Tessdata {
            dir: dir.to_path_buf(),
            languages,
        })
    }

    /// Where the language data is read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Installed languages, sorted.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.iter().map(String::as_str)
    }

    /// Checks a Tesseract language setting: one language (`eng`) or several joined by `+`
    /// (`eng+deu`), every one installed.
    pub fn check(&self, requested: &str) -> Result<(), UnknownOcrLanguage> {
        let installed = requested
            .split('+')
            .all(|language| self.languages.contains(language));
        if installed {
            Ok(())
        } else {
            Err(UnknownOcrLanguage {
                requested: requested.to_string(),
                installed: self.languages.iter().cloned().collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            std::fs::write(dir.path().join(file), b"").unwrap();
        }
        dir
    }

    #[test]
    fn lists_traineddata_files_but_not_osd() {
        let dir = dir_with(&[
            "eng.traineddata",
            "deu.traineddata",
            "osd.traineddata",
            "notes.txt",
        ]);
        let tessdata = Tessdata::locate(Some(dir.path())).unwrap();
        assert_eq!(tessdata.languages().collect::<Vec<_>>(), ["deu", "eng"]);
        assert_eq!(tessdata.dir(), dir.path());
    }

    #[test]
    fn checks_every_language_of_a_combination() {
        let dir = dir_with(&["eng.traineddata", "deu.traineddata"]);
        let tessdata = Tessdata::locate(Some(dir.path())).unwrap();
        assert_eq!(tessdata.check("eng"), Ok(()));
        assert_eq!(tessdata.check("deu+eng"), Ok(()));
        for requested in ["fra", "eng+fra", "", "eng+", "osd", "../eng"] {
            let error = tessdata.check(requested).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("OCR language '{requested}' is not installed; installed: deu, eng")
            );
            assert_eq!(AlgorithmError::from(error).status(), 400);
        }
    }

    #[test]
    fn a_directory_without_models_or_missing_is_refused() {
        let empty = dir_with(&["readme"]);
        let error = Tessdata::locate(Some(empty.path())).unwrap_err();
        assert!(
            error.to_string().contains("holds no language model"),
            "{error}"
        );
        let error = Tessdata::locate(Some(Path::new("/nonexistent/tessdata"))).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read the tessdata directory /nonexistent/tessdata"),
            "{error}"
        );
    }
}
