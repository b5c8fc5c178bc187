//! Flags of the built-in algorithms, shared by `runner` and `up`.

/// Settings of the built-in algorithms.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct AlgorithmFlags {
    /// ISO 639-1 codes `language_detection` chooses among (e.g. `en,de,fr`); default: every
    /// language the build detects. Fewer languages load faster and confuse less.
    #[arg(long, env = "SWITCHYARD_DETECTION_LANGUAGES", value_delimiter = ',')]
    pub detection_languages: Vec<String>,
    /// Tesseract language(s) `ocr` reads when a payload names none, e.g. `eng` or `eng+deu`
    /// [default: eng].
    #[arg(long, env = "SWITCHYARD_OCR_LANGUAGE")]
    pub ocr_language: Option<String>,
    /// Directory of Tesseract's `*.traineddata` [default: $TESSDATA_PREFIX, then the usual
    /// system directories].
    #[arg(long, env = "SWITCHYARD_TESSDATA_DIR")]
    pub tessdata_dir: Option<std::path::PathBuf>,
    /// Tesseract's shared library, loaded when `ocr` starts [default: libtesseract.so.5 and
    /// its kin, found by the dynamic loader]. Without one, `ocr` is reported unavailable.
    #[arg(long, env = "SWITCHYARD_TESSERACT_LIBRARY")]
    pub tesseract_library: Option<std::path::PathBuf>,
    /// Let image algorithms fetch from loopback, private, link-local and other non-public
    /// addresses. Off by default: a payload must not reach the runner's own network.
    #[arg(long, env = "SWITCHYARD_ALLOW_PRIVATE_URLS")]
    pub allow_private_urls: bool,
    /// Largest image accepted, in bytes, fetched or inline [default: 20971520].
    #[arg(long, env = "SWITCHYARD_IMAGE_MAX_BYTES")]
    pub image_max_bytes: Option<u64>,
    /// Largest image accepted, in pixels, checked from its header [default: 64000000].
    #[arg(long, env = "SWITCHYARD_IMAGE_MAX_PIXELS")]
    pub image_max_pixels: Option<u64>,
    /// Budget of one image fetch, redirects and body included, e.g. `10s` [default: 10s].
    #[arg(long, env = "SWITCHYARD_IMAGE_FETCH_TIMEOUT", value_parser = switchyard_wire::duration::parse_duration)]
    pub image_fetch_timeout: Option<std::time::Duration>,
    /// Redirects an image fetch follows [default: 5].
    #[arg(long, env = "SWITCHYARD_IMAGE_MAX_REDIRECTS")]
    pub image_max_redirects: Option<usize>,
    /// Engine of `image_classifier`: auto (ONNX Runtime when its library is found: ORT_DYLIB_PATH,
    /// else the onnxruntime wheel of $VIRTUAL_ENV or python3, else the system's libraries;
    /// else tract), tract or onnxruntime [default: auto].
    #[cfg(feature = "classifier")]
    #[arg(long, env = "SWITCHYARD_CLASSIFIER_ENGINE")]
    pub classifier_engine: Option<switchyard_algorithms::classifier::EngineChoice>,
    /// An ONNX image classifier to run instead of the built-in EfficientNet-Lite0: input
    /// [N,3,H,W] float32 RGB, output [N,classes] logits. Needs --classifier-labels.
    #[cfg(feature = "classifier")]
    #[arg(long, env = "SWITCHYARD_CLASSIFIER_MODEL")]
    pub classifier_model: Option<std::path::PathBuf>,
    /// The classifier's labels, one a line, in class order.
    #[cfg(feature = "classifier")]
    #[arg(long, env = "SWITCHYARD_CLASSIFIER_LABELS")]
    pub classifier_labels: Option<std::path::PathBuf>,
    /// Side of the square the classifier sees: the centre crop [default: 224].
    #[cfg(feature = "classifier")]
    #[arg(long, env = "SWITCHYARD_CLASSIFIER_INPUT_SIZE")]
    pub classifier_input_size: Option<u32>,
    /// Length the shorter side is resized to before the crop [default: 256].
    #[cfg(feature = "classifier")]
    #[arg(long, env = "SWITCHYARD_CLASSIFIER_RESIZE")]
    pub classifier_resize: Option<u32>,
    /// Normalisation of 0-255 pixel values, `MEAN,STD` or three means then three stds
    /// [default: 127,128].
    #[cfg(feature = "classifier")]
    #[arg(long, env = "SWITCHYARD_CLASSIFIER_NORMALIZE")]
    pub classifier_normalize: Option<switchyard_algorithms::classifier::Normalization>,
}

impl AlgorithmFlags {
    pub(crate) fn to_options(&self) -> switchyard_algorithms::Options {
        switchyard_algorithms::Options {
            detection_languages: self.detection_languages.clone(),
            ocr_language: self.ocr_language.clone(),
            tessdata_dir: self.tessdata_dir.clone(),
            tesseract_library: self.tesseract_library.clone(),
            image_input: self.image_input(),
            #[cfg(feature = "classifier")]
            classifier: self.classifier(),
        }
    }

    fn image_input(&self) -> switchyard_algorithms::image_input::ImageInputOptions {
        let defaults = switchyard_algorithms::image_input::ImageInputOptions::default();
        switchyard_algorithms::image_input::ImageInputOptions {
            allow_private_urls: self.allow_private_urls,
            max_bytes: self.image_max_bytes.unwrap_or(defaults.max_bytes),
            max_pixels: self.image_max_pixels.unwrap_or(defaults.max_pixels),
            fetch_timeout: self.image_fetch_timeout.unwrap_or(defaults.fetch_timeout),
            max_redirects: self.image_max_redirects.unwrap_or(defaults.max_redirects),
        }
    }

    #[cfg(feature = "classifier")]
    fn classifier(&self) -> switchyard_algorithms::classifier::ClassifierOptions {
        use switchyard_algorithms::classifier::{ClassifierOptions, Preprocessing};
        let defaults = Preprocessing::default();
        ClassifierOptions {
            engine: self.classifier_engine.unwrap_or_default(),
            model: self.classifier_model.clone(),
            labels: self.classifier_labels.clone(),
            preprocessing: Preprocessing {
                resize: self.classifier_resize.unwrap_or(defaults.resize),
                crop: self.classifier_input_size.unwrap_or(defaults.crop),
                normalization: self.classifier_normalize.unwrap_or(defaults.normalization),
            },
        }
    }
}
