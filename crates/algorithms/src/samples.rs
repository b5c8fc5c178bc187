//! Sample photos built into the binary (provenance: `testdata/images/PROVENANCE.md`): what
//! `up --demo` shows and `switchyard bench` measures with, so neither needs files at run time.

/// Name and bytes of each sample photo: three PNGs and two JPEGs, 451x300 to 640x427, 140-470 KB.
pub const SAMPLE_IMAGES: [(&str, &[u8]); 5] = [
    (
        "coffee.png",
        include_bytes!("../testdata/images/coffee.png"),
    ),
    (
        "camera.png",
        include_bytes!("../testdata/images/camera.png"),
    ),
    (
        "chelsea.png",
        include_bytes!("../testdata/images/chelsea.png"),
    ),
    ("china.jpg", include_bytes!("../testdata/images/china.jpg")),
    (
        "flower.jpg",
        include_bytes!("../testdata/images/flower.jpg"),
    ),
];
