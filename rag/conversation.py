"""Conversation: turn a follow-up question into a standalone one, without an LLM.

Retrieval only sees one question, so "and what did Xi say about it?" must become "what did Xi say
about China's 12-point plan?" before it is embedded. With an LLM configured `rag.generation` does the
rewrite; this deterministic rule is the offline default and the fallback when the LLM fails. It
carries the previous question's topic phrase and named entities into pronouns and elliptical
follow-ups, and keeps a person the follow-up names in place of the one asked about before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.models import Turn

_LEADING_WORDS = {"what", "who", "whom", "whose", "when", "where", "why", "how", "which", "is", "are", "was",
                   "were", "did", "does", "do", "can", "could", "will", "would", "should", "has", "have", "had",
                   "and", "but", "so", "also", "then", "i", "the", "a", "an", "in", "on", "of", "about", "tell",
                   "me", "please", "any", "there"}  # fmt: skip
_STOP = _LEADING_WORDS | {"say", "said", "to", "for", "with", "by", "from", "at", "it", "that", "this", "they",
                           "them", "he", "she", "him", "her", "his", "their", "its", "more", "else", "happen",
                           "happened", "mean", "think"}  # fmt: skip
_DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "his", "her", "their", "its", "our", "my"}
# A capitalised run ("Vladimir Putin", "China's") or a number-like token ("12-point", "2022").
_ENTITY = re.compile(r"\b(?:[A-Z][\w’'.-]*(?:\s+[A-Z][\w’'.-]*)*|\d[\w-]*)")
_TOPIC = re.compile(r"\b(?:about|regarding|concerning|on|of|over|for|in)\s+(.+?)\s*[?.!]*$", re.IGNORECASE)
_OBJECT_PRONOUN = re.compile(r"\b(it|this|that)(?=\s*(?:[?.!,;]|$))|\bit\b", re.IGNORECASE)
_PERSON_PRONOUN = re.compile(r"\b(he|she|they|him|them)\b", re.IGNORECASE)
_POSSESSIVE = re.compile(r"\b(his|her|their|its)\b", re.IGNORECASE)
_ELLIPSIS = re.compile(r"^(?:and|but|also|what about|how about|and what about|and how about)\s+(.+?)\s*[?.!]*$", re.I)
_LEAD = re.compile(r"^(?:and|but|also|so)\s+", re.IGNORECASE)


def entities(text: str) -> list[str]:
    """Names and numbers in `text`, in order, without the capitalised question word a sentence starts with."""
    found = []
    for match in _ENTITY.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in _LEADING_WORDS:
            words = words[1:]
        if words:
            found.append(" ".join(words))
    return found


def _last_noun_phrase(question: str) -> str:
    """The question's last noun phrase, to its end: from the last determiner ("the 2022 World Cup") or the last
    run of names and numbers ("Beijing"), never from a verb ("won"). Empty when there is none."""
    tokens = list(re.finditer(r"[\w’'-]+", question))
    start = None
    for i, token in enumerate(tokens):
        word = token.group()
        if word.lower() in _DETERMINERS and i + 1 < len(tokens):
            start = i
        elif i > 0 and (word[0].isupper() or word[0].isdigit()) and word.lower() not in _LEADING_WORDS:
            previous = tokens[i - 1].group()
            if start is None or not (
                previous[0].isupper() or previous[0].isdigit() or previous.lower() in _DETERMINERS
            ):
                start = i
    if start is None:
        return ""
    return question[tokens[start].start() :].strip().rstrip("?.!").strip()


def topic(question: str) -> str:
    """What a question is about: the object of its first "about/on/of..." phrase, else its last noun phrase
    ("Who won the 2022 World Cup?": "the 2022 World Cup"), else its content words."""
    match = _TOPIC.search(question)
    if match and match.group(1).lower() not in {"it", "this", "that", "them"}:
        return match.group(1)
    phrase = _last_noun_phrase(question)
    if phrase:
        return phrase
    words = [w for w in re.findall(r"[\w’'-]+", question) if w.lower() not in _STOP]
    return " ".join(words)


def _subjects(question: str, subject_topic: str) -> list[str]:
    """The previous question's names outside its topic phrase: whom it asked about."""
    return [e for e in entities(question) if e not in subject_topic]


def _finish(text: str) -> str:
    text = " ".join(text.split()).rstrip(" ?.!")
    return text[:1].upper() + text[1:] + "?"


def rewrite_one(question: str, previous: str | None) -> str:
    """`question` as a standalone question, given the (already standalone) previous question, if any."""
    question = " ".join(question.split())
    if not previous:
        return question
    about = topic(previous)
    subjects = _subjects(previous, about)
    named = entities(question)

    elliptical = _ELLIPSIS.match(question)
    if elliptical and len(elliptical.group(1).split()) <= 4 and not _OBJECT_PRONOUN.search(elliptical.group(1)):
        # "and Xi?" / "what about Xi Jinping?": the previous question, asked about the new name.
        new = elliptical.group(1)
        if subjects and entities(new):
            if re.search(rf"\bthe\s+{re.escape(subjects[0])}", previous, re.IGNORECASE):
                new = re.sub(r"^the\s+", "", new, flags=re.IGNORECASE)  # "the Taliban" -> "the UN"
            return _finish(previous.replace(subjects[0], new, 1))

    rewritten = _LEAD.sub("", question)
    changed = False
    if _OBJECT_PRONOUN.search(rewritten) and about:
        rewritten = _OBJECT_PRONOUN.sub(about, rewritten, count=1)
        changed = True
    people = " and ".join(subjects[:2])
    if people and _PERSON_PRONOUN.search(rewritten):
        rewritten = _PERSON_PRONOUN.sub(people, rewritten, count=1)
        changed = True
    if people and _POSSESSIVE.search(rewritten):
        rewritten = _POSSESSIVE.sub(f"{people}'s", rewritten, count=1)
        changed = True
    if changed:
        return _finish(rewritten)
    content = [w for w in re.findall(r"[\w’'-]+", question) if w.lower() not in _STOP]
    if not named and len(content) <= 3:
        # "and when?" / "why?": too little to retrieve on; carry the previous subject and topic.
        context = ", ".join(dict.fromkeys([*subjects[:2], about]))
        return _finish(f"{rewritten.rstrip(' ?.!')} ({context})")
    return question


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    """The last question made standalone by the rule; earlier user turns are rewritten in order first."""
    previous: str | None = None
    for turn in history:
        if turn.role == "user" and turn.content.strip():
            previous = rewrite_one(turn.content, previous)
    return rewrite_one(question, previous)
