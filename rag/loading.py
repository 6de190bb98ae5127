"""Loading: text files and JSONL corpora -> Articles with exact offsets and boilerplate removed.

A seed file may hold several articles back to back (a story, a "Keep reading" link list, a
second story from another outlet). We split them at headlines that follow a section break,
and keep only prose lines in each article's `body`.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rag.errors import InvalidDocument
from rag.extraction import ExtractionPolicy, extract_page
from rag.models import Article, ArticleFields, Span, iso_day

CORPUS_SUFFIXES = (".txt", ".jsonl")
HTML_NAMES = (".html", ".htm", ".html.gz", ".htm.gz")  # article pages, read by rag.extraction
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")

# Lines that end one story: whatever headline-like line comes next starts a new article.
_BREAK_LINE = re.compile(r"^(?:VIDEO|READ MORE|Read more|Keep reading|Source link|Related(?: articles| stories)?)$")
# Lines that are never prose but do not end a story.
_NOISE_LINE = re.compile(
    r"^(?:"
    r"\d{1,2}:\d{2}(?::\d{2})?"  # video durations such as 01:37
    r"|SEE ALSO:.*|ALSO READ:.*|RELATED:.*"
    r"|\(With (?:input|inputs|reporting) from [^)]*\)"
    r"|Advertisement|ADVERTISEMENT|Share|Subscribe|Click here.*"
    r")$"
)
_LINK_LIST = re.compile(r"^list of (\d+) items")
_TERMINAL = re.compile(r"[.!?…][\"”’')\]]*$")
_TITLE_PREFIX = re.compile(r"^(?:Free to read|Exclusive|Opinion|Analysis|Watch|Live)\s*[:|]\s*", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
_OPENING_QUOTE = ('"', "“", "‘", "'", "«")


@dataclass(slots=True)
class _Line:
    start: int
    end: int
    text: str
    kind: str  # "blank" | "break" | "noise" | "prose"


def read_text(path: Path) -> str:
    """Read a UTF-8 text file; undecodable bytes become U+FFFD instead of failing the whole corpus."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidDocument(f"cannot read {path}: {exc.strerror}") from exc
    return normalise_text(raw.decode("utf-8", errors="replace"))


def normalise_text(text: str) -> str:
    """Unify newlines, compose Unicode (NFC) and drop control characters, so offsets mean the
    same thing everywhere."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff"))
    return _CONTROL.sub("", text)


def decode_upload(raw: bytes) -> str:
    """Text from uploaded bytes: UTF-8 (with or without BOM), else Windows-1252; binary is refused."""
    if b"\x00" in raw:
        raise InvalidDocument("the file is not text (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise InvalidDocument("the file is neither UTF-8 nor Windows-1252 text") from exc
    return normalise_text(text)


def _classify(text: str) -> list[_Line]:
    lines: list[_Line] = []
    pos = 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        if not stripped:
            kind = "blank"
        elif _BREAK_LINE.match(stripped) or _LINK_LIST.match(stripped):
            kind = "break"
        elif _NOISE_LINE.match(stripped):
            kind = "noise"
        else:
            kind = "prose"
        lead = len(raw) - len(raw.lstrip())
        lines.append(_Line(pos + lead, pos + lead + len(stripped), stripped, kind))
        pos += len(raw) + 1
    _drop_link_list_items(lines)
    _drop_repeats(lines)
    return lines


def _drop_link_list_items(lines: list[_Line]) -> None:
    """'list of 4 items' glues the first item to its own line; the next three lines are the rest."""
    for i, line in enumerate(lines):
        m = _LINK_LIST.match(line.text)
        if not m:
            continue
        remaining = int(m.group(1)) - 1
        j = i + 1
        while remaining > 0 and j < len(lines):
            if lines[j].kind != "blank":
                lines[j].kind = "break"
                remaining -= 1
            j += 1


def _drop_repeats(lines: list[_Line]) -> None:
    """A line printed twice in a row is a photo caption; a line repeated further on is a pull quote.

    Captions go entirely; for a pull quote only its last occurrence (the one in the story) stays.
    """
    counts = Counter(line.text for line in lines if line.kind == "prose")
    prose = [line for line in lines if line.kind == "prose"]
    for a, b in itertools.pairwise(prose):
        if a.text == b.text:
            a.kind = b.kind = "noise"
    seen: Counter[str] = Counter()
    for line in prose:
        if line.kind != "prose" or counts[line.text] < 2:
            continue
        seen[line.text] += 1
        if seen[line.text] < counts[line.text]:
            line.kind = "noise"


def _looks_like_headline(text: str) -> bool:
    return (
        len(text) <= 200
        and len(text.split()) <= 30
        and not _TERMINAL.search(text)
        and not text.startswith(_OPENING_QUOTE)
    )


_LABEL = re.compile(r"^([A-Z][A-Za-z]+):\s+(?=\S)")


def clean_title(text: str, body: str = "") -> str:
    """Headlines without the badges and bylines fused onto them: paywall and section badges ('Free to read:',
    'Opinion:'), and a one-word label before a colon that the article never uses again ('Newsman: Chinese
    President Xi ...', a site's name). A label the article does use is the headline's own kicker ('Ukraine: ...'),
    and so is a label of several words ('Putin to Xi: ...', 'Double Trouble: ...')."""
    title = _TITLE_PREFIX.sub("", text).strip()
    label = _LABEL.match(title)
    rest = title[label.end() :] if label else ""
    if label and len(rest.split()) >= 4 and not re.search(rf"\b{label.group(1)}\b", body, re.IGNORECASE):
        return rest.strip()
    return title


def split_articles(text: str, file_id: str, source: str, source_file: str | None = None) -> list[Article]:
    """Split one file into its articles; the first prose line of each article is its headline."""
    lines = _classify(text)
    groups: list[list[_Line]] = []
    current: list[_Line] = []
    after_break = False
    for line in lines:
        if line.kind == "break":
            after_break = True
            continue
        if line.kind != "prose":
            if current:
                current.append(line)
            continue
        if after_break and current and _looks_like_headline(line.text):
            groups.append(current)
            current = []
        if after_break and current:
            current.append(_Line(line.start, line.start, "", "noise"))  # keeps the break out of the body
        after_break = False
        current.append(line)
    if current:
        groups.append(current)

    articles: list[Article] = []
    for n, group in enumerate((g for g in groups if any(x.kind == "prose" for x in g)), start=1):
        articles.append(_article_from_lines(text, group, f"{file_id}-{n}", source, source_file))
    return articles


def _article_from_lines(
    text: str, group: list[_Line], article_id: str, source: str, source_file: str | None
) -> Article:
    prose = [x for x in group if x.kind == "prose"]
    headline, rest = prose[0], prose[1:]
    start, end = headline.start, prose[-1].end
    body = _body_spans([x for x in group if x is not headline and start <= x.start], start, end)
    if not rest:  # a lone line: it is both headline and body
        body = (Span(0, end - start),)
    return Article(
        id=article_id,
        title=clean_title(headline.text, text[headline.end : end]),
        text=text[start:end],
        body=body,
        source=source,
        source_file=source_file,
        source_start=start,
        source_end=end,
    )


def _body_spans(lines: Iterable[_Line], offset: int, limit: int) -> tuple[Span, ...]:
    """Runs of prose lines (blank lines allowed inside), relative to the article start."""
    spans: list[Span] = []
    run_start: int | None = None
    run_end = 0
    for line in lines:
        if line.kind == "prose" and line.end <= limit:
            if run_start is None:
                run_start = line.start
            run_end = line.end
        elif line.kind in ("noise", "break") and run_start is not None:
            spans.append(Span(run_start - offset, run_end - offset))
            run_start = None
    if run_start is not None:
        spans.append(Span(run_start - offset, run_end - offset))
    return tuple(spans)


def article_from_body(
    article_id: str,
    title: str,
    body: str,
    source: str,
    published_at: date | None = None,
    url: str | None = None,
    source_file: str | None = None,
    author: str | None = None,
    extracted: bool = False,
) -> Article:
    """One article whose headline is given separately (JSONL, HTTP uploads, extracted pages). The lines of a
    plain-text body that are page furniture (captions, bylines, lines repeated many times) are left out of its
    body; an `extracted` page's extractor has already removed its furniture, and its short lines (the headings
    of a list, a recipe's steps) are the article's own."""
    text = normalise_text(body)
    title = normalise_text(title).strip()
    if not title:
        raise InvalidDocument(f"article {article_id!r} has no title")
    if extracted:
        stripped = text.strip()
        start = text.find(stripped[:1]) if stripped else 0
        spans: tuple[Span, ...] = (Span(start, start + len(stripped)),) if stripped else ()
    else:
        spans = _body_spans(_classify(text), 0, len(text))
    if not spans:
        raise InvalidDocument(
            f"article {article_id!r} has no text: nothing is left once page furniture is set aside "
            "(captions, bylines, timestamps, 'READ MORE' and other lines repeated many times)"
        )
    return Article(
        id=article_id,
        title=clean_title(title, text),
        text=text,
        body=spans,
        source=source,
        source_file=source_file,
        source_start=0,
        source_end=len(text),
        published_at=published_at,
        url=url,
        author=author,
    )


def parse_date(value: object) -> date | None:
    """Dates as JSONL corpora write them (see `iso_day`); None for nothing or anything else."""
    if not value or not isinstance(value, str):
        return None
    try:
        return iso_day(value)
    except ValueError:
        return None


def jsonl_rows(text: str, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of JSONL text."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidDocument(f"{name} line {lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise InvalidDocument(f"{name} line {lineno}: a line must hold a JSON object")
        yield lineno, row


def _text_field(row: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = row.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InvalidDocument(f"{key}: must be a string, not {type(value).__name__}")
        return value
    return None


# Reads one line's object (its line number given) into fields; raises InvalidDocument for a line it refuses.
RowReader = Callable[[int, dict[str, Any]], ArticleFields]


def corpus_row(_: int, row: dict[str, Any]) -> ArticleFields:
    """A corpus line as `rag ingest` reads it: `id, title, source, published_at, url, body` (or `text`); an
    integer id is its decimal string; other keys are ignored."""
    article_id = row.get("id")
    if isinstance(article_id, int) and not isinstance(article_id, bool):
        article_id = str(article_id)
    if not isinstance(article_id, str) or not article_id.strip():
        raise InvalidDocument("id: must be a non-empty string")
    published = row.get("published_at")
    published_at = parse_date(published)
    if published and published_at is None:
        raise InvalidDocument(f"published_at: {str(published)[:40]!r} is not a date")
    return ArticleFields(
        id=article_id,
        title=_text_field(row, "title") or "",
        body=_text_field(row, "body", "text") or "",
        source=_text_field(row, "source"),
        published_at=published_at,
        url=_text_field(row, "url"),
    )


def parse_jsonl(
    text: str,
    name: str,
    read_row: RowReader = corpus_row,
    max_chars: int | None = None,
    unique_ids: bool = False,
    label: str | None = None,
) -> Iterator[Article]:
    """The articles of JSONL text, one a line, the one reader of the CLI and of uploads.

    `read_row` reads each line's fields (the CLI's `corpus_row`, or the API's schema); `max_chars` limits a
    body's length and `unique_ids` refuses two lines with one id. Errors name the line, after `label`
    (default: the file's name); an article without a source takes the file's name."""
    where = label or name
    lines: dict[str, int] = {}
    for lineno, row in jsonl_rows(text, name):
        try:
            fields = read_row(lineno, row)
        except InvalidDocument as exc:
            raise InvalidDocument(f"{where} line {lineno}: {exc}") from exc
        if max_chars is not None and len(fields.body) > max_chars:
            raise InvalidDocument(
                f"{where} line {lineno}: body: article {fields.id!r} is longer than {max_chars} characters"
            )
        if unique_ids and fields.id in lines:
            raise InvalidDocument(f"{where}: article id {fields.id!r} is on lines {lines[fields.id]} and {lineno}")
        lines[fields.id] = lineno
        try:
            yield article_from_body(
                article_id=fields.id,
                title=fields.title,
                body=fields.body,
                source=fields.source or name,
                published_at=fields.published_at,
                url=fields.url,
                source_file=name,
            )
        except InvalidDocument as exc:
            raise InvalidDocument(f"{where} line {lineno}: {exc}") from exc


def within_limit(article_id: str, body: str, max_chars: int, where: str) -> None:
    """The size every write path holds an article to (RAG_MAX_ARTICLE_CHARS)."""
    if len(body) > max_chars:
        raise InvalidDocument(f"{where}: article {article_id!r} is longer than {max_chars} characters")


def article_from_fields(fields: ArticleFields, max_chars: int, default_source: str = "api") -> Article:
    """An article a caller describes (POST /documents), held to `max_chars`."""
    within_limit(fields.id, fields.body, max_chars, "body")
    source = fields.source or default_source
    return article_from_body(fields.id, fields.title, fields.body, source, fields.published_at, fields.url)


def upload_articles(raw: bytes, name: str, max_chars: int, read_row: RowReader = corpus_row) -> list[Article]:
    """The articles of an uploaded file: a `.jsonl` corpus read line by line with `read_row`, an HTML page
    (one article, id the name without its extensions), or plain text split into articles whose ids are
    `<file stem>-<n>`; every article held to `max_chars`."""
    if is_html_name(name):
        article = html_article(raw, name)
        within_limit(article.id, article.text, max_chars, "file")
        return [article]
    text = decode_upload(raw)
    if name.endswith(".jsonl"):
        articles = list(parse_jsonl(text, name, read_row, max_chars=max_chars, unique_ids=True, label="file"))
    else:
        articles = split_articles(text, file_id=Path(name).stem, source=name, source_file=name)
        for article in articles:
            within_limit(article.id, article.text, max_chars, "file")
    if not articles:
        raise InvalidDocument("file: no article text found")
    return articles


def load_jsonl(path: Path) -> Iterator[Article]:
    """Articles of a JSONL corpus file."""
    return parse_jsonl(read_text(path), path.name)


def load_text_file(path: Path) -> list[Article]:
    """Every article of one plain-text file; ids are `<file stem>-<n>`."""
    return split_articles(read_text(path), file_id=path.stem, source=path.name, source_file=path.name)


def _is_corpus_file(path: Path) -> bool:
    return path.suffix in CORPUS_SUFFIXES or is_html_name(path.name)


def corpus_files(paths: Iterable[Path]) -> list[Path]:
    """The corpus files named by `paths` (files, or folders searched one level deep), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and _is_corpus_file(p)))
        elif path.is_file():
            if not _is_corpus_file(path):
                kinds = ", ".join((*CORPUS_SUFFIXES, *HTML_NAMES))
                raise InvalidDocument(f"{path}: only {kinds} files can be ingested")
            found.append(path)
        else:
            raise InvalidDocument(f"{path}: no such file or folder")
    return found


def is_html_name(name: str) -> bool:
    return name.lower().endswith(HTML_NAMES)


def article_id_of_name(name: str) -> str:
    """An article id from a file name: the name without its extensions ("page.html.gz" -> "page"), any
    character an id may not hold made a dash."""
    stem = name
    for suffix in sorted(HTML_NAMES, key=len, reverse=True):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    cleaned = _ID_UNSAFE.sub("-", stem).strip("-._:")[:128]
    if not cleaned:
        raise InvalidDocument(f"{name}: no article id can be made of this name; give one")
    return cleaned


def html_article(
    raw: bytes,
    name: str,
    article_id: str | None = None,
    url: str | None = None,
    policy: ExtractionPolicy | None = None,
    from_file: bool = True,
) -> Article:
    """The article of an HTML page (gzipped when `name` ends in .gz), as `rag.extraction` reads it: id from the
    file name unless given, source the site's name (else the file's), offsets into the extracted text. A page
    not `from_file` (fetched) names no source file."""
    if name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InvalidDocument(f"{name}: not a gzip file ({exc})") from exc
    try:
        page = extract_page(raw, url, policy)
    except InvalidDocument as exc:
        raise InvalidDocument(f"{name}: {exc}") from exc
    return article_from_body(
        article_id=article_id or article_id_of_name(name),
        title=page.title,
        body=page.text,
        source=page.site or name,
        published_at=page.published_at,
        url=page.url,
        source_file=name if from_file else None,
        author=page.author,
        extracted=True,
    )


def load_file(path: Path) -> list[Article]:
    """Articles of one corpus file, whatever its format."""
    if path.suffix == ".jsonl":
        return list(load_jsonl(path))
    if is_html_name(path.name):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InvalidDocument(f"cannot read {path}: {exc.strerror}") from exc
        return [html_article(raw, path.name)]
    return load_text_file(path)
