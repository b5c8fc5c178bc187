//! Tesseract's TSV output to lines with boxes and confidences. TSV is the one output of the
//! crate's safe API that carries a box and a confidence per word, and it is plain text: parsing
//! it needs no iterator over Tesseract's internals.
//!
//! Columns: level page block paragraph line word left top width height confidence text. Level 4
//! rows are lines (with their box, no confidence), level 5 rows their words.

use serde::Serialize;

/// One line of recognised text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// Its words, separated by single spaces.
    pub text: String,
    /// Mean confidence of its words, from 0 to 1, to four decimals.
    pub confidence: f64,
    /// Where the line stands on the image.
    #[serde(rename = "box")]
    pub bounding_box: BoundingBox,
}

/// A rectangle in image pixels; the origin is the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BoundingBox {
    /// Left edge, in pixels from the image's left.
    pub x: u32,
    /// Top edge, in pixels from the image's top.
    pub y: u32,
    /// In pixels.
    pub width: u32,
    /// In pixels.
    pub height: u32,
}

/// Lines of a page, in reading order, each with the paragraph it belongs to.
#[derive(Debug)]
pub struct Page {
    /// The lines, top to bottom.
    pub lines: Vec<Line>,
    /// (block, paragraph) of each line: where the full text needs a blank line.
    paragraphs: Vec<(u32, u32)>,
}

impl Page {
    /// The page's text: lines separated by a line break, paragraphs by a blank line.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for (index, line) in self.lines.iter().enumerate() {
            if index > 0 {
                let new_paragraph = self.paragraphs[index] != self.paragraphs[index - 1];
                text.push_str(if new_paragraph { "\n\n" } else { "\n" });
            }
            text.push_str(&line.text);
        }
        text
    }
}

/// A line being assembled from its words.
struct Pending {
    paragraph: (u32, u32),
    bounding_box: BoundingBox,
    words: Vec<String>,
    confidence_sum: f64,
}

impl Pending {
    fn finish(self) -> Option<(Line, (u32, u32))> {
        if self.words.is_empty() {
            return None;
        }
        let line = Line {
            text: self.words.join(" "),
            // Four decimals: Tesseract's own precision, without the noise of dividing by 100.
            confidence: (self.confidence_sum / self.words.len() as f64 * 100.0).round() / 10_000.0,
            bounding_box: self.bounding_box,
        };
        Some((line, self.paragraph))
    }
}

/// Parses Tesseract's TSV. Rows that are not data (a header, a malformed row) are skipped: one
/// odd row must not cost the whole page. Lines without a word are dropped.
pub(super) fn parse(tsv: &str) -> Page {
    let mut page = Page {
        lines: Vec::new(),
        paragraphs: Vec::new(),
    };
    let mut pending: Option<Pending> = None;
    for row in tsv.lines().filter_map(Row::parse) {
        match row.level {
            LINE => {
                page.extend(pending.take().and_then(Pending::finish));
                pending = Some(Pending {
                    paragraph: (row.block, row.paragraph),
                    bounding_box: row.bounding_box,
                    words: Vec::new(),
                    confidence_sum: 0.0,
                });
            }
            WORD => {
                let word = row.text.trim();
                if let (Some(line), false, true) =
                    (&mut pending, word.is_empty(), row.confidence >= 0.0)
                {
                    line.words.push(word.to_string());
                    line.confidence_sum += row.confidence;
                }
            }
            _ => {}
        }
    }
    page.extend(pending.and_then(Pending::finish));
    page
}

impl Page {
    fn extend(&mut self, line: Option<(Line, (u32, u32))>) {
        if let Some((line, paragraph)) = line {
            self.lines.push(line);
            self.paragraphs.push(paragraph);
        }
    }
}

const LINE: u32 = 4;
const WORD: u32 = 5;

struct Row<'a> {
    level: u32,
    block: u32,
    paragraph: u32,
    bounding_box: BoundingBox,
    /// Tesseract's 0 to 100; -1 on rows above words.
    confidence: f64,
    text: &'a str,
}

impl<'a> Row<'a> {
    fn parse(row: &'a str) -> Option<Self> {
        let mut fields = row.splitn(12, '\t');
        let mut number = || fields.next()?.trim().parse::<u32>().ok();
        let level = number()?;
        let _page = number()?;
        let block = number()?;
        let paragraph = number()?;
        let _line = number()?;
        let _word = number()?;
        let bounding_box = BoundingBox {
            x: number()?,
            y: number()?,
            width: number()?,
            height: number()?,
        };
        let confidence = fields.next()?.trim().parse::<f64>().ok()?;
        let text = fields.next().unwrap_or("");
        Some(Row {
            level,
            block,
            paragraph,
            bounding_box,
            confidence,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t640\t480\t-1\t
2\t1\t1\t0\t0\t0\t20\t30\t400\t90\t-1\t
3\t1\t1\t1\t0\t0\t20\t30\t400\t90\t-1\t
4\t1\t1\t1\t1\t0\t20\t30\t400\t40\t-1\t
5\t1\t1\t1\t1\t1\t20\t30\t150\t40\t96.5\tHello
5\t1\t1\t1\t1\t2\t180\t30\t240\t40\t91.5\tworld!
4\t1\t1\t1\t2\t0\t20\t80\t300\t40\t-1\t
5\t1\t1\t1\t2\t1\t20\t80\t300\t40\t90\tSecond
4\t1\t1\t1\t3\t0\t20\t120\t10\t10\t-1\t
5\t1\t1\t1\t3\t1\t20\t120\t10\t10\t95\t 
3\t1\t1\t2\t0\t0\t20\t200\t400\t40\t-1\t
4\t1\t1\t2\t1\t0\t20\t200\t100\t40\t-1\t
5\t1\t1\t2\t1\t1\t20\t200\t100\t40\t80\tNew
not\ta\trow
";

    #[test]
    fn gathers_words_into_lines_with_their_box_and_mean_confidence() {
        let page = parse(TSV);
        assert_eq!(page.lines.len(), 3, "the blank line is dropped");
        assert_eq!(
            page.lines[0],
            Line {
                text: "Hello world!".into(),
                confidence: 0.94,
                bounding_box: BoundingBox {
                    x: 20,
                    y: 30,
                    width: 400,
                    height: 40
                },
            }
        );
        assert_eq!(page.lines[1].text, "Second");
        assert_eq!(page.lines[2].confidence, 0.8);
        assert_eq!(page.text(), "Hello world!\nSecond\n\nNew");
    }

    #[test]
    fn nothing_recognised_is_an_empty_page() {
        let page = parse("1\t1\t0\t0\t0\t0\t0\t0\t10\t10\t-1\t\n");
        assert!(page.lines.is_empty());
        assert_eq!(page.text(), "");
        assert!(parse("").lines.is_empty());
    }

    #[test]
    fn serialises_the_box_under_its_wire_name() {
        let line = &parse(TSV).lines[1];
        assert_eq!(
            serde_json::to_value(line).unwrap(),
            serde_json::json!({"text": "Second", "confidence": 0.9,
                "box": {"x": 20, "y": 80, "width": 300, "height": 40}})
        );
    }
}
