"""Real-looking news pages and feeds for the tests of HTML ingestion, fetching and feeds: a site's furniture
(navigation, share buttons, related links, a cookie banner, a footer, reader comments) around one article with
its headline, byline, date and canonical URL in the places publishers put them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime
from html import escape

PARAGRAPHS = (
    "The port authority of Rotterdam said on Tuesday that container traffic fell for a third straight quarter, "
    "as shipping lines rerouted vessels around the Cape of Good Hope to avoid attacks in the Red Sea.",
    "Volumes dropped 4.2 percent from a year earlier to 3.3 million twenty-foot equivalent units, the authority "
    "said in a statement, its weakest third quarter since 2016.",
    '"The detours add ten to fourteen days to a voyage from Shanghai," chief executive Boudewijn Siemons told '
    'reporters. "Ships arrive in bunches, and our terminals have to absorb the peaks."',
    "Dry bulk throughput rose slightly thanks to higher coal imports for German power plants, partly offsetting "
    "the decline in containers and liquefied natural gas.",
    "The authority kept its forecast for the full year unchanged and said investment in a new offshore wind "
    "terminal would go ahead as planned in 2025.",
)

# A second story, for tests that need two that are not copies of each other.
HAMBURG = (
    "Hamburg's port said on Monday that rail freight to southern Germany rose by a fifth in the third quarter, as "
    "shippers moved containers off congested motorways and onto new night trains to Munich and Nuremberg.",
    "The port's rail operator added twelve weekly departures and said it would order forty more wagons next year.",
    "Trucking firms have struggled to hire drivers, and tolls on heavy lorries rose sharply at the start of the "
    "year, which pushed more freight to the railways serving the northern ports.",
)


def article_page(
    *,
    title: str = "Rotterdam port traffic falls again as ships avoid Red Sea",
    site: str = "Harbour Times",
    author: str = "Anna de Vries",
    published: date = date(2024, 10, 29),
    canonical: str = "https://harbourtimes.example/news/rotterdam-port-traffic",
    paragraphs: tuple[str, ...] = PARAGRAPHS,
) -> str:
    """A publisher's article page: the story among the site's furniture, its metadata in meta tags and JSON-LD."""
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} | {escape(site)}</title>
<link rel="canonical" href="{canonical}">
<meta property="og:title" content="{escape(title)}">
<meta property="og:site_name" content="{escape(site)}">
<meta property="og:type" content="article">
<meta name="author" content="{escape(author)}">
<meta property="article:published_time" content="{published.isoformat()}T08:15:00+00:00">
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "NewsArticle",
 "headline": "{escape(title)}", "datePublished": "{published.isoformat()}T08:15:00+00:00",
 "author": {{"@type": "Person", "name": "{escape(author)}"}}}}</script>
</head>
<body>
<div class="cookie-banner">We use cookies to improve your experience. <a href="/privacy">Accept all</a></div>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/business">Business</a></li><li><a href="/markets">Markets</a></li></ul></nav></header>
<main>
<article>
<h1>{escape(title)}</h1>
<p class="byline">By <span class="author">{escape(author)}</span> &middot;
<time datetime="{published.isoformat()}">{published:%B %d, %Y}</time></p>
<div class="share"><a href="#">Share on X</a> <a href="#">Share on Facebook</a> <a href="#">Email</a></div>
<div class="article-body">
{body}
</div>
</article>
<aside class="related"><h2>Related stories</h2><ul>
<li><a href="/a">Hamburg expands rail links to the south</a></li>
<li><a href="/b">Freight rates climb for a fourth week</a></li></ul></aside>
<section id="comments"><h2>Comments</h2><div class="comment"><p>First! Great article, very informative about
the shipping situation and the port, thanks for writing it.</p></div></section>
</main>
<footer><p>&copy; 2024 {escape(site)}. All rights reserved.</p><a href="/terms">Terms</a> <a href="/contact">Contact</a>
</footer>
</body>
</html>
"""


def section_front(site: str = "Harbour Times") -> str:
    """A section front: headlines and links, no article."""
    links = "\n".join(f'<li><a href="/news/story-{i}">Headline number {i} about ports</a></li>' for i in range(1, 25))
    return f"""<!DOCTYPE html><html><head><title>Business | {site}</title></head>
<body><header><nav><a href="/">Home</a> <a href="/business">Business</a></nav></header>
<main><h1>Business</h1><ul>{links}</ul></main><footer>&copy; {site}</footer></body></html>"""


def paywall_stub(site: str = "Harbour Times") -> str:
    """A paywalled article: the headline and a teaser, then a subscription offer."""
    return f"""<!DOCTYPE html><html><head><title>Ports brace for a hard winter | {site}</title></head>
<body><article><h1>Ports brace for a hard winter</h1>
<p>European ports are preparing for a difficult winter season.</p>
<div class="paywall"><p>Subscribe to continue reading.</p><a href="/subscribe">Subscribe now</a></div>
</article></body></html>"""


def rss_feed(entries: list[tuple[str, str, str, date]], title: str = "Harbour Times: Business") -> str:
    """An RSS 2.0 feed of (guid, link, title, published) entries, each with a short description."""
    items = "\n".join(
        f"""<item><guid isPermaLink="false">{escape(guid)}</guid><link>{escape(link)}</link>
<title>{escape(headline)}</title>
<pubDate>{format_datetime(datetime(day.year, day.month, day.day, 8, tzinfo=UTC))}</pubDate>
<description>{escape(PARAGRAPHS[0])}</description></item>"""
        for guid, link, headline, day in entries
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{escape(title)}</title><link>https://harbourtimes.example/</link>
<description>Business news</description>
{items}
</channel></rss>"""


def atom_feed(entries: list[tuple[str, str, str, date, str]], title: str = "Wire: Europe") -> str:
    """An Atom feed of (id, link, title, updated, content) entries carrying their story as content."""
    items = "\n".join(
        f"""<entry><id>{escape(eid)}</id><link href="{escape(link)}"/><title>{escape(headline)}</title>
<updated>{day.isoformat()}T08:00:00Z</updated><author><name>Wire staff</name></author>
<content type="html">{escape(content)}</content></entry>"""
        for eid, link, headline, day, content in entries
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>{escape(title)}</title><id>urn:wire:europe</id>
<updated>2024-10-29T08:00:00Z</updated>
{items}
</feed>"""
