"""Text normalisation shared by lexical retrieval and the answerer: terms, stopwords, stems."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)
_UNITED_STATES = re.compile(r"\bUnited States(?: of America)?\b")
_INITIALISM = re.compile(r"\b([A-Z])\.([A-Z])\.(?:([A-Z])\.)?")
# Demonyms and adjectives fold into the place name, so "Chinese" evidence matches a "China" question.
_DEMONYMS = {
    "chinese": "china",
    "russian": "russia",
    "russians": "russia",
    "ukrainian": "ukraine",
    "ukrainians": "ukraine",
    "american": "us",
    "americans": "us",
    "america": "us",
    "japanese": "japan",
    "swiss": "switzerland",
    "british": "britain",
    "asian": "asia",
    "indian": "india",
    "european": "europe",
    "mongolian": "mongolia",
    "taiwanese": "taiwan",
    "uzbek": "uzbekistan",
    "western": "west",
    "soviet": "ussr",
    "korean": "korea",
    "german": "germany",
    "french": "france",
    "saudi": "saudi",
    "afghan": "afghanistan",
    "iranian": "iran",
    "israeli": "israel",
    "turkish": "turkey",
}

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "couldn't",
        "did",
        "didn't",
        "do",
        "does",
        "doesn't",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "hadn't",
        "has",
        "hasn't",
        "have",
        "haven't",
        "having",
        "he",
        "he'd",
        "he'll",
        "he's",
        "her",
        "here",
        "here's",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "how's",
        "i",
        "i'd",
        "i'll",
        "i'm",
        "i've",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "let's",
        "me",
        "more",
        "most",
        "mustn't",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "shan't",
        "she",
        "she'd",
        "she'll",
        "she's",
        "should",
        "shouldn't",
        "so",
        "some",
        "such",
        "than",
        "that",
        "that's",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "there's",
        "these",
        "they",
        "they'd",
        "they'll",
        "they're",
        "they've",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "wasn't",
        "we",
        "we'd",
        "we'll",
        "we're",
        "we've",
        "were",
        "weren't",
        "what",
        "what's",
        "when",
        "when's",
        "where",
        "where's",
        "which",
        "while",
        "who",
        "who's",
        "whom",
        "why",
        "why's",
        "with",
        "won't",
        "would",
        "wouldn't",
        "you",
        "you'd",
        "you'll",
        "you're",
        "you've",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "s",
        "t",
        "also",
    ]
)
# Words that frame a question ("what did X say", "how many") rather than tell: no evidence of their own.
FRAME_WORDS = frozenset(
    [
        "say",
        "said",
        "says",
        "tell",
        "told",
        "mention",
        "mentioned",
        "describe",
        "described",
        "according",
        "report",
        "reported",
        "happen",
        "happened",
        "think",
        "thought",
        "view",
        "views",
        "kind",
        "sort",
        "way",
        "many",
        "much",
    ]
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased words: "12-point" stays whole, "China's" and "Chinese" become "china", "U.S." "us"."""
    text = _UNITED_STATES.sub("US", text)
    text = _INITIALISM.sub(lambda m: "".join(g for g in m.groups() if g), text)
    out = []
    for match in _WORD.finditer(text.lower()):
        word = match.group().replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        out.append(_DEMONYMS.get(word, word))
    return out


def terms(text: str) -> list[str]:
    """Stemmed content words, stopwords removed: the vocabulary of the lexical index.

    A hyphenated word counts whole and by its parts ("Russia-China" -> russia-china, russia, china).
    """
    kept: list[str] = []
    for word in words(text):
        if word in STOPWORDS:
            continue
        kept.append(word)
        if "-" in word:
            kept.extend(_DEMONYMS.get(p, p) for p in word.split("-") if p and p not in STOPWORDS)
    return _stemmer().stemWords(kept) if kept else []


def stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


# A question's setting: the occasion it names ("during the December 2022 video call", "at the Samarkand
# meeting", "in Moscow"), a phrase after one of these prepositions running to the end of its clause.
_SETTING = re.compile(r"\b(?:during|at|in|after|before)\b", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[,;?]|\band\b", re.IGNORECASE)
_WH_WORDS = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how")
_AUXILIARIES = ("did", "does", "do", "has", "had", "have", "was", "were", "is", "are", "will", "would", "can", "could")
# The words that make a question a question: a question word or an auxiliary.
ASKING = frozenset((*_WH_WORDS, *_AUXILIARIES))


def setting_phrases(question: str) -> list[str]:
    """The phrases of `question` that name the occasion it asks about: what follows "during", "at", "in",
    "after" or "before" up to the end of its clause ("How did Putin rate relations with China during the
    December 2022 video call with Xi?" -> "the December 2022 video call with Xi"). A phrase holding a question
    word or an auxiliary is part of what is asked ("in which building", "in Beijing did Putin ..."), not one."""
    out = []
    for match in _SETTING.finditer(question):
        rest = question[match.end() :]
        end = _CLAUSE_END.search(rest)
        phrase = rest[: end.start()] if end else rest
        found = [w.lower() for w in _WORD.findall(phrase)]
        if found and not any(w in ASKING for w in found):
            out.append(phrase.strip())
    return out


def setting_terms(question: str) -> frozenset[str]:
    """The terms of `question`'s setting phrases (see `setting_phrases`)."""
    return frozenset(t for phrase in setting_phrases(question) for t in terms(phrase))
