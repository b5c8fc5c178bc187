"""A series adapter, as the series' Part III writes one: ``run_<name>`` functions with typed
arguments, and the series' ``RequestError`` for an image that could not be fetched."""


class _Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class RequestError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"fetch failed with {status_code}")
        self.response = _Response(status_code)


def run_meme_classifier(image_url: str):
    if image_url.endswith("missing.jpg"):
        raise RequestError(404)
    return {"label": "matrix_morpheus", "score": 0.99998}


def run_ocr(image_url: str, lang: str = "eng"):
    return f"text of {image_url} in {lang}"


def helper(x: int) -> int:  # not run_*: not an algorithm
    return x
