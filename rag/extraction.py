"""Extraction: an article page (HTML) -> its headline, body text, date, author, canonical URL and site name.

trafilatura does the reading (a well-kept extractor; with `favor_precision` it keeps less page furniture). What
it returns is what gets stored: the body becomes the article's text, so citation offsets index the extracted
text. A page with no article on it (a section front, a paywall stub, an error page) is refused with a message
that says so, rather than stored as a few stray lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rag.errors import InvalidDocument
from rag.models import iso_day


@dataclass(frozen=True, slots=True)
class ExtractionPolicy:
    """What counts as an article. `min_words`: fewer words of body than this is no article (a paywall stub or a
    section front extracts to a teaser or two)."""

    favor_precision: bool = True
    min_words: int = 60


@dataclass(frozen=True, slots=True)
class ExtractedPage:
    """What a page says of its article."""

    title: str
    text: str
    published_at: date | None
    author: str | None
    url: str | None  # the canonical URL the page names, else the one it was fetched from
    site: str | None  # the site's name ("Wall Street Journal"), else its host


def extract_page(html: bytes | str, url: str | None = None, policy: ExtractionPolicy | None = None) -> ExtractedPage:
    """The article of an HTML page; raises InvalidDocument when the page holds none."""
    policy = policy or ExtractionPolicy()
    from trafilatura import bare_extraction
    from trafilatura.settings import Document

    try:
        found = bare_extraction(
            html,
            url=url,
            favor_precision=policy.favor_precision,
            with_metadata=True,
            include_comments=False,
        )
    except (ValueError, TypeError) as exc:  # an unreadable document
        raise InvalidDocument(f"the page could not be read as HTML ({exc})") from exc
    if not isinstance(found, Document):  # None: nothing extracted (a dict only comes with as_dict=True)
        found = None
    text = (found.text or "").strip() if found is not None else ""
    if found is None or len(text.split()) < policy.min_words:
        words = len(text.split())
        raise InvalidDocument(
            f"no article found on this page ({words} words of body text; at least {policy.min_words} make one): "
            "a section front, a paywall or an error page?"
        )
    published = None
    if found.date:
        try:
            published = iso_day(str(found.date))
        except ValueError:
            published = None
    site = found.sitename or found.hostname or None
    title = headline(" ".join((found.title or "").split()), site, found.hostname)
    return ExtractedPage(
        title=title or text.split("\n", 1)[0][:200],
        text=text,
        published_at=published,
        author=(found.author or None),
        url=found.url or url,
        site=site,
    )


_BLOCKS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "br", "section", "article")


def fragment_text(fragment: str) -> str:
    """The text of an HTML fragment (a feed entry's content), one line per block; plain text passes through."""
    if "<" not in fragment:
        return "\n".join(line.strip() for line in fragment.splitlines() if line.strip())
    from lxml import html as lxml_html
    from lxml.etree import ParserError

    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    except (ParserError, ValueError):
        return ""
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    for block in root.iter(*_BLOCKS):
        block.tail = "\n" + (block.tail or "")
    text = root.text_content()
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


_SITE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ")


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def headline(title: str, site: str | None, host: str | None) -> str:
    """A page title without the site's name that pages append ("... - News Nation", "... | MoreBikes"); empty
    when the title is only the site's name (the caller then takes the first line of the text)."""
    names = {_letters(n) for n in (site, (host or "").removeprefix("www.").split(".")[0]) if n}
    names.discard("")
    if _letters(title) in names:
        return ""
    stripped = True
    while stripped:  # "Story - Section - Site": the site's name, then what it names beside it
        stripped = False
        for separator in _SITE_SEPARATORS:
            head, found, tail = title.rpartition(separator)
            tail_letters = _letters(tail)
            if found and head and tail_letters and any(tail_letters in n or n in tail_letters for n in names):
                title, stripped = head.strip(), True
                break
    return title
