//! Pixels to the model's input tensor: the shorter side resized to `resize` (bilinear,
//! antialiased, as PIL's BILINEAR), the centre `crop`x`crop` kept, each value normalised, NCHW.

use std::fmt;
use std::str::FromStr;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// Per-channel `(x - mean) / std`, on 0-255 pixel values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    /// Subtracted from each RGB channel (0 to 1) first.
    pub mean: [f32; 3],
    /// Each channel is divided by it next.
    pub std: [f32; 3],
}

impl Default for Normalization {
    /// EfficientNet-Lite's: (x - 127) / 128.
    fn default() -> Self {
        Normalization {
            mean: [127.0; 3],
            std: [128.0; 3],
        }
    }
}

impl FromStr for Normalization {
    type Err = String;

    /// `MEAN,STD` for every channel, or `R,G,B,R,G,B` means then standard deviations
    /// (torchvision's ImageNet: `123.675,116.28,103.53,58.395,57.12,57.375`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let values = text
            .split(',')
            .map(|value| value.trim().parse::<f32>())
            .collect::<Result<Vec<f32>, _>>()
            .map_err(|e| format!("'{text}': {e}"))?;
        let normalization = match values[..] {
            [mean, std] => Normalization {
                mean: [mean; 3],
                std: [std; 3],
            },
            [r, g, b, r_std, g_std, b_std] => Normalization {
                mean: [r, g, b],
                std: [r_std, g_std, b_std],
            },
            _ => {
                return Err(format!(
                    "'{text}': give MEAN,STD or three means then three stds"
                ));
            }
        };
        if normalization.std.iter().any(|std| !std.is_normal()) {
            return Err(format!(
                "'{text}': standard deviations must be non-zero numbers"
            ));
        }
        Ok(normalization)
    }
}

impl fmt::Display for Normalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Normalization { mean, std } = self;
        if mean.iter().all(|m| *m == mean[0]) && std.iter().all(|s| *s == std[0]) {
            write!(f, "{},{}", mean[0], std[0])
        } else {
            write!(
                f,
                "{},{},{},{},{},{}",
                mean[0], mean[1], mean[2], std[0], std[1], std[2]
            )
        }
    }
}

/// How an image becomes the model's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// Length the shorter side is resized to.
    pub resize: u32,
    /// Side of the square kept at the centre: the model's input size.
    pub crop: u32,
    /// Per-channel mean and standard deviation the model was trained with.
    pub normalization: Normalization,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Preprocessing {
            resize: 256,
            crop: 224,
            normalization: Normalization::default(),
        }
    }
}

impl Preprocessing {
    /// Refuses settings that cannot produce a crop of the model's input size, before a model is loaded with them.
    pub fn validate(&self) -> Result<(), String> {
        if self.crop == 0 || self.crop > self.resize {
            return Err(format!(
                "the input size ({}) must be between 1 and the resize length ({})",
                self.crop, self.resize
            ));
        }
        Ok(())
    }

    /// Floats of one image's input: 3 x crop x crop.
    pub fn input_len(&self) -> usize {
        3 * (self.crop as usize).pow(2)
    }

    /// The model's input for `image`: resized, cropped, normalised, NCHW.
    pub fn input(&self, image: &RgbImage) -> Result<Vec<f32>, String> {
        Ok(self.normalize(&self.resize_and_crop(image)?))
    }

    /// Size of the image once its shorter side is `resize`; the longer side is rounded down.
    pub fn resized_size(&self, width: u32, height: u32) -> (u32, u32) {
        let scale = |long: u32, short: u32| {
            (u64::from(self.resize) * u64::from(long) / u64::from(short)) as u32
        };
        if width <= height {
            (self.resize, scale(height, width))
        } else {
            (scale(width, height), self.resize)
        }
    }

    /// The centre `crop`x`crop` of `image` resized. One pass: the resizer reads only the source
    /// area the crop covers, with the scale of the full resize, so a 1x10000 image costs no more
    /// than a square one (resizing it whole would make a 256x2560000 intermediate).
    pub fn resize_and_crop(&self, image: &RgbImage) -> Result<RgbImage, String> {
        let (width, height) = image.dimensions();
        let (resized_width, resized_height) = self.resized_size(width, height);
        let scale_x = f64::from(width) / f64::from(resized_width);
        let scale_y = f64::from(height) / f64::from(resized_height);
        // Rounded down, as the reference does, so odd margins put the extra pixel on the right.
        let left = (resized_width - self.crop) / 2;
        let top = (resized_height - self.crop) / 2;
        let source = ImageRef::new(width, height, image.as_raw(), PixelType::U8x3)
            .map_err(|e| e.to_string())?;
        let mut target = Image::new(self.crop, self.crop, PixelType::U8x3);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
            .crop(
                f64::from(left) * scale_x,
                f64::from(top) * scale_y,
                f64::from(self.crop) * scale_x,
                f64::from(self.crop) * scale_y,
            );
        Resizer::new()
            .resize(&source, &mut target, &options)
            .map_err(|e| e.to_string())?;
        Ok(RgbImage::from_raw(self.crop, self.crop, target.into_vec())
            .expect("the target holds crop x crop RGB pixels"))
    }

    /// `image`'s pixels normalised, one plane per channel (NCHW).
    pub fn normalize(&self, image: &RgbImage) -> Vec<f32> {
        let plane = image.as_raw().len() / 3;
        let Normalization { mean, std } = self.normalization;
        let mut input = vec![0.0; 3 * plane];
        for (index, pixel) in image.pixels().enumerate() {
            for channel in 0..3 {
                input[channel * plane + index] =
                    (f32::from(pixel[channel]) - mean[channel]) / std[channel];
            }
        }
        input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_normalizations() {
        assert_eq!("127,128".parse(), Ok(Normalization::default()));
        let imagenet: Normalization = "123.675,116.28,103.53,58.395,57.12,57.375".parse().unwrap();
        assert_eq!(imagenet.mean, [123.675, 116.28, 103.53]);
        assert_eq!(imagenet.std, [58.395, 57.12, 57.375]);
        assert_eq!(imagenet.to_string().parse(), Ok(imagenet));
        assert!("1,2,3".parse::<Normalization>().is_err());
        assert!(
            "127,0"
                .parse::<Normalization>()
                .unwrap_err()
                .contains("non-zero")
        );
        assert!("a,b".parse::<Normalization>().is_err());
    }

    #[test]
    fn resizes_the_shorter_side_and_rounds_down() {
        let preprocessing = Preprocessing::default();
        assert_eq!(preprocessing.resized_size(512, 384), (341, 256));
        assert_eq!(preprocessing.resized_size(384, 512), (256, 341));
        assert_eq!(preprocessing.resized_size(100, 100), (256, 256));
        assert_eq!(preprocessing.resized_size(1, 10_000), (256, 2_560_000));
    }

    #[test]
    fn crops_the_centre() {
        // Left half black, right half white, both taller than the crop: the centre crop of the
        // resized image is half black, half white.
        let image = RgbImage::from_fn(600, 300, |x, _| {
            if x < 300 {
                [0, 0, 0].into()
            } else {
                [255, 255, 255].into()
            }
        });
        let crop = Preprocessing::default().resize_and_crop(&image).unwrap();
        assert_eq!(crop.dimensions(), (224, 224));
        assert_eq!(crop.get_pixel(0, 100).0, [0, 0, 0]);
        assert_eq!(crop.get_pixel(223, 100).0, [255, 255, 255]);
        let middle = crop.get_pixel(112, 100).0[0];
        assert!(middle > 100, "the edge is at the centre: {middle}");
    }

    #[test]
    fn extreme_aspect_ratios_cost_one_crop() {
        let image = RgbImage::from_pixel(1, 10_000, [200, 100, 50].into());
        let crop = Preprocessing::default().resize_and_crop(&image).unwrap();
        assert_eq!(crop.dimensions(), (224, 224));
        assert_eq!(crop.get_pixel(100, 100).0, [200, 100, 50]);
    }

    #[test]
    fn normalises_into_channel_planes() {
        let preprocessing = Preprocessing {
            crop: 2,
            resize: 2,
            normalization: Normalization::default(),
        };
        let image = RgbImage::from_fn(2, 2, |x, y| [(x * 10) as u8, (y * 20) as u8, 255].into());
        let input = preprocessing.normalize(&image);
        assert_eq!(input.len(), preprocessing.input_len());
        let value = |x: f32| (x - 127.0) / 128.0;
        assert_eq!(
            &input[0..4],
            &[value(0.), value(10.), value(0.), value(10.)]
        );
        assert_eq!(
            &input[4..8],
            &[value(0.), value(0.), value(20.), value(20.)]
        );
        assert_eq!(&input[8..12], &[value(255.); 4]);
    }

    #[test]
    fn refuses_a_crop_larger_than_the_resize() {
        let preprocessing = Preprocessing {
            crop: 300,
            ..Preprocessing::default()
        };
        assert!(
            preprocessing
                .validate()
                .unwrap_err()
                .contains("input size (300)")
        );
        assert!(Preprocessing::default().validate().is_ok());
    }
}
