"""Answering: pick the retrieved sentences that answer the question, or say the sources don't.

The default answerer is extractive: it quotes sentences verbatim, so every claim is exactly
what a source says. A sentence qualifies on two kinds of evidence: meaning (cosine between the
question and the sentence vector stored at ingest) and words (the question's informative terms
found in the sentence and its passage). The names and numbers a question hinges on must appear
in the article a sentence comes from, so a question about the right people but the wrong year
or topic is refused rather than answered with something loosely related.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rag.citations import Quote, build_citations, compose, quote_text
from rag.errors import ProviderError
from rag.generation import NO_ANSWER_REPLY, OpenAIGenerator, build_messages
from rag.models import Answer, Chunk, ScoredChunk, Span
from rag.retrieval import Snapshot
from rag.text import ASKING, QUESTION_WORDS, STOPWORDS, stem, terms, words
from rag.verification import Verifier

log = logging.getLogger("rag.answering")

NO_ANSWER = NO_ANSWER_REPLY

# What an answer stream yields: pieces of text as they are produced, then the finished Answer.
AnswerEvent = str | Answer

_CAPITALISED = re.compile(r"\b[A-Z][\w’'-]*|\b\w*\d[\w-]*")
_TERMINAL = re.compile(r"[.!?…:][\"”’')\]]*$")
# A sentence that leans on the one before it ("But he added that ...") is quoted with it.
_CONTINUATION = re.compile(
    r"^(?:[\"“‘']?)(?:(?:But|And|However,?|Yet|Still,?)\s+)?(?:he|she|they|it|this|that|these|those)\s+"
    r"(?:\w+\s+){0,2}?(?:added|said|says|noted|stressed|warned|stated|told|insisted|argued|continued|explained)\b",
    re.IGNORECASE,
)
# Questions that ask for a quantity are only answered by a sentence that states one, and questions
# about money by a sentence that names an amount of it: "how many ships" is not answered by a
# sentence about the drills that gives no number.
_QUANTITY_QUESTION = re.compile(
    r"\b(?:how (?:many|much|long|often)|what (?:volume|number|amount|percentage|share|price|value|figures?|numbers|"
    r"statistics)|dollar value|"
    r"price per)\b",
    re.IGNORECASE,
)
_MONEY_QUESTION = re.compile(r"\b(?:dollars?|price|cost|costs|paid|pay)\b", re.IGNORECASE)
_QUANTITY = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|trillion|dozens?|twice|once|half|quarter|several)\b",
    re.IGNORECASE,
)
_MONEY = re.compile(r"[$€£¥]|\b(?:dollars?|usd|yuan|renminbi|rubles?|roubles?|euros?)\b", re.IGNORECASE)
# "How many ships ..." is answered by a sentence that counts ships: the counted nouns of the question
# (the words after "how many" up to the verb) must appear in the sentence. Counts of occasions
# ("how many times") are stated as "twice" or "on 40 occasions", so those nouns are not required.
_HOW_MANY = re.compile(
    r"\bhow many ((?:[\w’'-]+\s+){0,4}?)(?=(?:did|do|does|were|was|are|is|had|has|have|will|would|took|take)\b)",
    re.IGNORECASE,
)
_OCCASIONS = frozenset(["time", "occas", "visit", "meet"])
# A question asking for what is planned or to come ("what figures for future gas deliveries", "which upcoming
# summit") is not answered by a sentence about what already happened: the sentence must look ahead. Only the
# words right after the question word count: "which country banned tobacco for future generations" asks
# about the past.
_FUTURE_QUESTION = re.compile(
    r"^(?:what|which|how)\s+(?:[\w’'-]+\s+){0,3}?(?:future|upcoming|forthcoming|planned|projected)\b", re.IGNORECASE
)
_FUTURE = re.compile(
    r"\b(?:will|would|shall|plan(?:s|ned)?|goals?|targets?|aim(?:s|ed)?|expect(?:s|ed)?|intend(?:s|ed)?|"
    r"project(?:s|ed)?|forecast|future|upcoming|next|by (?:19|20)\d\d|to come|set to|due to|going to)\b",
    re.IGNORECASE,
)
_DURATION_QUESTION = re.compile(r"\bhow long\b|\bfor how (?:many|much)\b", re.IGNORECASE)
_DURATION = re.compile(
    r"\b(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centur(?:y|ies)|as long|longer|shorter)\b",
    re.IGNORECASE,
)
_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
# A "when" question is answered by a sentence that places something in time.
_WHEN_QUESTION = re.compile(
    r"^(?:since |until |by )?when\b|\b(?:what|which) (?:date|day|year|month|time)\b|\bsince when\b", re.IGNORECASE
)
_TIME = re.compile(
    rf"\b(?:{_MONTHS}|{_WEEKDAYS}|spring|summer|autumn|fall|winter|today|yesterday|tomorrow|tonight|ago|"
    r"(?:last|next|this|coming|previous|past|same) (?:week|month|year|decade|spring|summer|autumn|winter)|"
    r"(?:1[89]|20)\d\d|(?:days?|weeks?|months?|years?) (?:after|before|later|earlier)|eve of|since|until|"
    r"mid-\w+|early|late)\b",
    re.IGNORECASE,
)
# A "where / in which city" question is answered by a sentence that names a place: a capitalised name after
# a locative preposition ("in Samarkand", "to Harbin", "in Beijing’s Great Hall") that the question does not
# already name. Months and weekdays after "in" / "on" are times, not places.
_PLACE_QUESTION = re.compile(
    r"^where\b|\b(?:which|what) (?:\w+ )?(?:city|town|country|countries|capital|building|venue|place|region|"
    r"province|state|village|port|hall|palace|location)\b",
    re.IGNORECASE,
)
_PLACE = re.compile(
    r"(?<!according )\b(?:in|at|to|from|near|inside|outside|into|across|toward|towards|hosted by|held in|"
    r"visited|visit|visiting)\s+"
    r"(?:the\s+)?((?:[A-Z][\w’'.-]*(?:\s+(?:of\s+the\s+|of\s+|de\s+)?|[’']s\s+)?){1,6})"
)
# "Which prime minister / which Asian head of government" asks for a person: a sentence saying "the Japanese
# prime minister" names the role, not the person. A person's name reads as two or more capitalised words
# ("Fumio Kishida") or a title and a name ("Mr. Xi", "President Putin").
_PERSON_QUESTION = re.compile(
    r"\b(?:which|what)\s+(?:[\w-]+\s+){0,2}?(?:leader|minister|president|premier|head of (?:state|government)|"
    r"official|spokes(?:man|woman|person)|politician|diplomat|senator|governor|chancellor|king|queen|ceo|envoy|"
    r"ambassador|commander|candidate|lawmaker)\b",
    re.IGNORECASE,
)
_NAME = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|President|Premier|Minister|Chancellor|King|Queen|Senator|Sen|Gov|Governor|General|Gen)\.?"
    r"\s+([A-Z][\w’'-]+)|\b([A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)+)"
)
_NOT_PLACES = frozenset(m.lower() for m in f"{_MONTHS}|{_WEEKDAYS}".split("|"))
# "In which building / hall / venue" asks for a building, not a city: a place name with a word that names one
# ("Great Hall of the People", "the Kremlin", "Palais des Nations").
_BUILDING_QUESTION = re.compile(
    r"\b(?:which|what) (?:\w+ )?(?:building|venue|hall|palace|hotel|residence|compound)\b", re.IGNORECASE
)
_BUILDING_WORDS = (
    "hall building house palace palais kremlin tower centre center hotel residence embassy parliament capitol "
    "chancellery stadium arena museum theatre theater cathedral church mosque temple castle villa pavilion "
    "square forum mansion dacha compound"
)
# Questions about what someone said or how they reacted, and the words that report speech in a sentence.
_SPEECH_QUESTION = re.compile(
    r"\b(?:did|does|do|has|have|had)\s+((?:[\w’'.-]+\s+){1,6}?)(?:say|said|tell|told|describe|characteri[sz]e|"
    r"respond|react|rate|reply|replied|comment|warn|call|thank|credit|accuse|praise|critici[sz]e)(?:d|ed)?\b",
    re.IGNORECASE,
)
_QUOTE_MARKS = re.compile(r"[\"“”«»]")
_REPORTING = re.compile(
    r"\b(?:said|says|say|told|tells|added|noted|stressed|warned|stated|insisted|argued|explained|"
    r"described|called|urged|accused|thanked|praised|critici[sz]ed|welcomed|expressed|responded|replied|"
    r"reacted|commented|announced|declared|emphasi[sz]ed|reiterated|vowed|pledged|claimed|credited|hailed|"
    r"condemned|rejected|dismissed|denied|acknowledged|admitted|spoke|remarks?|statement)\b",
    re.IGNORECASE,
)
# "Putin said", "Xi told Putin", "said Xi": the name before a reporting verb, or right after "said" (not after
# "told", which names the listener). "The Swiss government noted", "the Chinese side said": the name is the
# adjective before the institution that speaks.
_SPEAKER = re.compile(
    r"\b([A-Z][\w’'-]+)(?:\s+(?:government|(?:foreign )?ministry|side|embassy|officials?|spokes(?:man|woman|person)))?"
    r"\s+(?:said|says|told|tells|added|noted|stressed|warned|stated|insisted|argued|explained|"
    r"responded|replied|commended|praised|urged|accused|thanked|described|called|expressed|reiterated|"
    r"emphasi[sz]ed|welcomed|hailed|vowed)\b|\b(?:said|says|added|noted|stressed)\s+([A-Z][\w’'-]+)\b"
)
# What a speech question is about: the words after "about / to / on" up to the end of that clause.
_TOPIC = re.compile(
    r"\b(?:about|to|on|regarding|over)\s+(.+?)(?=\s+(?:when|while|during|at|in|after|before|since)\b|[,;?]|$)"
)
# Questions comparing two events ("has X changed between A and B") are answered from two articles.
_COMPARISON = re.compile(
    r"\bbetween\b.+\band\b|\b(?:chang(?:e|ed|ing)|differ(?:ed|ent|ence)?|compared?|shift(?:ed)?)\b", re.IGNORECASE
)
_NOT_SPEAKERS = frozenset(stem(w) for w in STOPWORDS | _NOT_PLACES)
_BUILDING_STEMS = frozenset(stem(w) for w in _BUILDING_WORDS.split())


@dataclass(frozen=True, slots=True)
class AnswerPolicy:
    """The answerer's knobs, tuned on the seed questions (see eval/)."""

    max_sentences: int = 3
    passages: int = 8  # how many top passages to read sentences from
    lexical_weight: float = 0.3  # weight of the sentence's share of the question's terms
    passage_weight: float = 0.1  # weight of the passage's share of the question's terms
    rank_weight: float = 0.05  # bonus for sentences in higher-ranked passages
    min_similarity: float = 0.3  # best sentence's cosine must reach this
    min_score: float = 0.5  # best sentence's combined score must reach this
    keep_within: float = 0.115  # further sentences must score within this of the best
    duplicate_similarity: float = 0.95  # a sentence this close to a chosen one adds nothing
    answer_type: bool = True  # quantity / money questions need a sentence stating a quantity / amount
    same_article: bool = True  # further sentences come from the best sentence's article


@dataclass(slots=True)
class _Candidate:
    hit: ScoredChunk
    sentence: Span
    vector_row: int
    similarity: float
    score: float


def key_terms(question: str) -> set[str]:
    """Names and numbers the question hinges on (capitalised words not at the start, digits)."""
    out: set[str] = set()
    for i, match in enumerate(_CAPITALISED.finditer(question)):
        token = match.group()
        if i == 0 and match.start() == 0 and token.lower() in ASKING:
            continue
        for word in words(token):
            for part in word.split("-"):
                if part and part not in STOPWORDS and part not in ASKING and part not in QUESTION_WORDS:
                    out.add(stem(part))
    return out


def _stems(text: str) -> set[str]:
    return {stem(w) for w in words(text)}


def _singular(word: str) -> str:
    """ "ships" -> "ship", "delegations" -> "delegation" (not a stemmer: "shipped" stays apart from "ship")."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def counted_nouns(question: str) -> set[str]:
    """What a "how many ..." question counts ("ship", "sailor"), singular; empty for other questions."""
    match = _HOW_MANY.search(question)
    if not match:
        return set()
    out = {_singular(w) for w in words(match.group(1)) if w not in STOPWORDS and w not in ASKING}
    return set() if {stem(w) for w in out} & _OCCASIONS else out


def places(sentence: str) -> set[str]:
    """Stems of the capitalised names a sentence puts after a locative preposition ("in Samarkand")."""
    out: set[str] = set()
    for match in _PLACE.finditer(sentence):
        for word in words(match.group(1)):
            if word not in STOPWORDS and word not in _NOT_PLACES:
                out.add(stem(word))
    return out


def names(sentence: str) -> set[frozenset[str]]:
    """People's names in a sentence, each as the stems of its words: a title and a name, or two or more
    capitalised words ("Fumio Kishida"; "The Japanese" is not a name, "The" being a stopword)."""
    out: set[frozenset[str]] = set()
    for match in _NAME.finditer(sentence):
        if match.group(1):
            out.add(frozenset([stem(match.group(1).lower())]))
            continue
        name = [w for w in words(match.group(2)) if w not in STOPWORDS and w not in _NOT_PLACES]
        if len(name) >= 2:
            out.add(frozenset(stem(w) for w in name))
    return out


def fits_answer_type(question: str, sentence: str) -> bool:
    """Whether a sentence can answer the kind of question asked (see `QuestionKind.fits`)."""
    return QuestionKind.of(question).fits(SentenceFacts(sentence))


def asks_for_slot(question: str) -> bool:
    """Whether the question asks for one specific item (a number, an amount, a duration, a time, a place)."""
    return any(
        pattern.search(question)
        for pattern in (_QUANTITY_QUESTION, _DURATION_QUESTION, _WHEN_QUESTION, _PLACE_QUESTION)
    )


def undated(names: set[str]) -> set[str]:
    """Key terms without years and months: articles are dated, so their text often says "last month" instead."""
    months = {stem(m.lower()) for m in _MONTHS.split("|")}
    return {t for t in names if t not in months and not re.fullmatch(r"(?:1[89]|20)\d\d", t)}


def speech_subject(question: str) -> set[str]:
    """Stems of the names of whoever a "what did X say / how did X react" question asks about."""
    match = _SPEECH_QUESTION.search(question)
    if not match:
        return set()
    return {stem(w) for m in _CAPITALISED.finditer(match.group(1)) for w in words(m.group())} - {
        stem(w) for w in ASKING
    }


def fits_speaker(question: str, sentence: str) -> bool:
    """Whether a sentence reports what the question's speaker said (see `QuestionKind.fits_speaker`)."""
    return QuestionKind.of(question).fits_speaker(SentenceFacts(sentence))


def speakers(sentence: str) -> set[str]:
    """Stems of the names a sentence gives as its speakers ("Putin said", "said Xi", "Xi told Putin": Xi)."""
    out = {stem(w) for m in _SPEAKER.finditer(sentence) for g in m.groups() if g for w in words(g)}
    return out - _NOT_SPEAKERS


def speech_topic(question: str) -> set[str]:
    """Terms of what a "what did X say about ... / how did X respond to ..." question is about."""
    match = _SPEECH_QUESTION.search(question)
    if not match:
        return set()
    topic = _TOPIC.search(question, match.end())
    if not topic:
        return set()
    return set(terms(topic.group(1))) - speech_subject(question) - {stem(w) for w in QUESTION_WORDS}


def compares_events(question: str) -> bool:
    """Whether a question compares two events ("has X changed between A and B"), so needs two sources."""
    return bool(_COMPARISON.search(question))


@dataclass(frozen=True, slots=True)
class QuestionKind:
    """What a question asks for, read once per question: the answerer tests every candidate sentence
    against it, and reading the question again for each sentence was most of the answerer's time."""

    money: bool
    quantity: bool
    counted: frozenset[str]
    duration: bool
    future: bool
    when: bool
    place: bool
    building: bool
    person: bool
    named: frozenset[str]  # stems of the question's words: a place it names is not an answer to "where"
    subject: frozenset[str]  # whose speech a "what did X say" question asks about

    @classmethod
    def of(cls, question: str) -> QuestionKind:
        quantity = bool(_QUANTITY_QUESTION.search(question))
        return cls(
            money=quantity and bool(_MONEY_QUESTION.search(question)),
            quantity=quantity,
            counted=frozenset(counted_nouns(question)),
            duration=bool(_DURATION_QUESTION.search(question)),
            future=bool(_FUTURE_QUESTION.search(question)),
            when=bool(_WHEN_QUESTION.search(question)),
            place=bool(_PLACE_QUESTION.search(question)),
            building=bool(_BUILDING_QUESTION.search(question)),
            person=bool(_PERSON_QUESTION.search(question)),
            named=frozenset(_stems(question)),
            subject=frozenset(speech_subject(question)),
        )

    def fits(self, sentence: SentenceFacts) -> bool:
        """Whether a sentence can answer the kind of question asked.

        A quantity or an amount of money (and for "how many X" a count of X), a duration for "how long",
        a time for "when", a sentence looking ahead for a question about what is to come, a place the
        question does not name for "where / which city", for "which building" a place whose name says it is
        one, and for "which minister / leader" a person's name the question does not give.
        """
        if self.money and not sentence.money:
            return False
        if self.quantity and not sentence.quantity:
            return False
        if self.counted and not self.counted & sentence.singulars:
            return False
        if self.duration and not sentence.duration:
            return False
        if self.when and not sentence.time:
            return False
        if self.future and not sentence.future:
            return False
        if self.building and not (sentence.places - self.named) & _BUILDING_STEMS:
            return False
        if self.person and all(name & self.named for name in sentence.names):
            return False  # names no one, or only people the question names
        return not (self.place and not sentence.places - self.named)

    def fits_speaker(self, sentence: SentenceFacts) -> bool:
        """A "what did X say" question is answered by a sentence reporting speech, and not one quoting
        someone else.

        The sentence (with the one leaning on it) must report something said (a quotation or a reporting
        verb); when it names its speaker ("Putin said", "said Xi") without naming the one the question asks
        about, it quotes someone else. "He said" names no one.
        """
        if not self.subject:
            return True
        if not sentence.reports:
            return False
        return not sentence.speakers or bool(sentence.speakers & self.subject)


class SentenceFacts:
    """What the answerer checks a sentence for, whatever the question: each fact read the first time a
    question needs it, then kept with the sentence (reading them for every candidate of every question
    was most of the answerer's time; reading all of them up front, for facts few questions need, cost
    more than that on a cold cache)."""

    def __init__(self, text: str, said: str | None = None, quoted: bool | None = None) -> None:
        self.text = text
        self.said = text if said is None else said  # with the sentence that leans on it, if any
        # whether it quotes someone: read from its paragraph by `of_chunk`, else any quotation mark
        self.quoted = bool(_QUOTE_MARKS.search(self.said)) if quoted is None else quoted

    @cached_property
    def heading(self) -> bool:
        return is_heading(self.text)

    @cached_property
    def money(self) -> bool:
        return bool(_MONEY.search(self.text))

    @cached_property
    def quantity(self) -> bool:
        return bool(_QUANTITY.search(self.text))

    @cached_property
    def singulars(self) -> frozenset[str]:
        return frozenset(_singular(w) for w in words(self.text))

    @cached_property
    def duration(self) -> bool:
        return bool(_DURATION.search(self.text))

    @cached_property
    def future(self) -> bool:
        return bool(_FUTURE.search(self.text))

    @cached_property
    def time(self) -> bool:
        return bool(_TIME.search(self.text))

    @cached_property
    def places(self) -> frozenset[str]:
        return frozenset(places(self.text))

    @cached_property
    def names(self) -> frozenset[frozenset[str]]:
        return frozenset(names(self.text))

    @cached_property
    def reports(self) -> bool:
        return self.quoted or bool(_REPORTING.search(self.said))

    @cached_property
    def speakers(self) -> frozenset[str]:
        return frozenset(speakers(self.said))

    @cached_property
    def terms(self) -> frozenset[str]:
        return frozenset(terms(self.said))

    @classmethod
    def of_chunk(cls, chunk: Chunk) -> list[SentenceFacts]:
        spans = chunk.sentences
        texts = [quote_text(chunk, span) for span in spans]
        out = []
        for i, (span, text) in enumerate(zip(spans, texts, strict=True)):
            leaning = i + 1 < len(spans) and _leans_on(chunk, span, spans[i + 1], texts[i + 1])
            quoted = _quotes(chunk, span, text) or (leaning and _quotes(chunk, spans[i + 1], texts[i + 1]))
            out.append(cls(text, f"{text} {texts[i + 1]}" if leaning else text, quoted))
        return out


def refusal(question: str, hits: list[ScoredChunk]) -> Answer:
    """The answer when the sources do not support one: said plainly, nothing cited."""
    return Answer(question=question, text=NO_ANSWER, answerable=False, citations=[], retrieved=hits)


def _leans_on(chunk: Chunk, span: Span, nxt: Span, nxt_text: str) -> bool:
    """Whether the next sentence `nxt` (its text `nxt_text`) only makes sense after `span`: in the same
    paragraph, and opening like "But he added that ..."."""
    between = chunk.text[span.end - chunk.start : nxt.start - chunk.start]
    return "\n" not in between and bool(_CONTINUATION.match(nxt_text))


def _quotes(chunk: Chunk, span: Span, text: str) -> bool:
    """Whether a sentence's quotation marks quote someone. A closing mark at its end quotes only when an
    earlier sentence of the paragraph opened a quotation; scraped articles carry stray ones ("... in
    Samarkand, Uzbekistan.\"" after plain prose). `text` is the sentence's (`quote_text(chunk, span)`)."""
    if _QUOTE_MARKS.search(text.rstrip(".!?…)]’'\"”» ")):
        return True
    if not _QUOTE_MARKS.search(text):
        return False
    start = span.start - chunk.start
    before = chunk.text[chunk.text.rfind("\n", 0, start) + 1 : start]
    return before.count("“") + before.count("«") > before.count("”") + before.count("»") or before.count('"') % 2 == 1


def _continuation(chunk: Chunk, sentence: Span) -> Span | None:
    """The next sentence of the same paragraph when it only makes sense after this one."""
    spans = chunk.sentences
    for i, span in enumerate(spans[:-1]):
        if span == sentence:
            nxt = spans[i + 1]
            return nxt if _leans_on(chunk, span, nxt, quote_text(chunk, nxt)) else None
    return None


def context(chunk: Chunk, sentence: Span) -> str:
    """The sentence with the one that leans on it ("But he added that ..."), as a reader would take it."""
    follower = _continuation(chunk, sentence)
    text = quote_text(chunk, sentence)
    return text if follower is None else f"{text} {quote_text(chunk, follower)}"


def is_heading(text: str) -> bool:
    """A cross-heading such as "Gas, Internet": no sentence to quote."""
    return not _TERMINAL.search(text) and len(text.split()) < 12


class ExtractiveAnswerer:
    """Quotes the best-supported sentences of the retrieved passages, each with a citation."""

    def __init__(self, policy: AnswerPolicy | None = None) -> None:
        self.policy = policy or AnswerPolicy()

    @staticmethod
    def facts(snapshot: Snapshot, index: int) -> list[SentenceFacts]:
        """The facts of each sentence of chunk `index`, kept with the snapshot for up to 1,024 chunks (each
        sentence's facts take up to ~4 KB once all are read)."""
        return snapshot.memoised("sentence_facts", index, lambda stored: SentenceFacts.of_chunk(stored.chunk), 1024)

    def answer(self, question: str, question_vector: np.ndarray, hits: list[ScoredChunk], snapshot: Snapshot) -> Answer:
        candidates = self.candidates(question, question_vector, hits, snapshot)
        if not candidates:
            return refusal(question, hits)
        chosen = self.choose(question, candidates, snapshot)
        quotes: list[Quote] = []
        for cand in chosen:
            quotes.append(Quote(cand.hit.chunk, cand.sentence))
            follower = _continuation(cand.hit.chunk, cand.sentence)
            if follower is not None:
                quotes.append(Quote(cand.hit.chunk, follower))
        citations = build_citations(quotes)
        return Answer(question=question, text=compose(citations), answerable=True, citations=citations, retrieved=hits)

    def candidates(
        self, question: str, question_vector: np.ndarray, hits: list[ScoredChunk], snapshot: Snapshot
    ) -> list[_Candidate]:
        """The sentences that may answer, best first; empty when the sources do not support an answer."""
        policy = self.policy
        weights, total = snapshot.lexical.question_weights(question)
        critical = key_terms(question)

        read = [h for h in hits[: policy.passages] if h.chunk.id in snapshot.by_id]
        covered = set().union(*(snapshot.article_terms.get(h.chunk.article_id, frozenset()) for h in read))
        if critical - covered:
            # No retrieved article mentions a name or number the question hinges on.
            return []

        # A question asking for one item of one event ("when is X's visit to Washington") is only answered
        # from a passage that names everything the event is identified by (dates aside).
        required = undated(critical) if policy.answer_type and asks_for_slot(question) else set()
        # What someone said about a topic is quoted from a sentence that mentions the topic.
        topic = speech_topic(question) if policy.answer_type else set()
        kind = QuestionKind.of(question)
        candidates: list[_Candidate] = []
        seen: set[tuple[str, int, int]] = set()
        for hit in read:
            idx = snapshot.by_id[hit.chunk.id]
            passage_terms = snapshot.chunk_terms[idx]
            if required - passage_terms:
                continue
            passage_share = sum(w for t, w in weights.items() if t in passage_terms) / total
            sims = snapshot.sentence_vectors(idx) @ question_vector
            facts = self.facts(snapshot, idx)
            for row, span in enumerate(hit.chunk.sentences):
                key = (hit.chunk.article_id, span.start, span.end)
                if key in seen:
                    continue
                seen.add(key)
                sentence = facts[row]
                if sentence.heading:
                    continue
                if policy.answer_type and not (
                    kind.fits(sentence) and kind.fits_speaker(sentence) and (not topic or topic & sentence.terms)
                ):
                    continue
                sentence_terms = snapshot.sentence_terms(idx)[row]
                share = sum(w for t, w in weights.items() if t in sentence_terms) / total
                similarity = float(sims[row])
                score = (
                    similarity
                    + policy.lexical_weight * share
                    + policy.passage_weight * passage_share
                    + policy.rank_weight / hit.rank
                )
                candidates.append(_Candidate(hit, span, row, similarity, score))

        candidates.sort(key=lambda c: (-c.score, c.hit.rank, c.sentence.start))
        if not candidates or candidates[0].similarity < policy.min_similarity or candidates[0].score < policy.min_score:
            return []
        return candidates

    def choose(self, question: str, candidates: list[_Candidate], snapshot: Snapshot) -> list[_Candidate]:
        """The best candidate and the few close behind it that add something."""
        policy = self.policy
        comparison = compares_events(question)
        subject = speech_subject(question)
        best = candidates[0].score

        def by_subject(cand: _Candidate) -> bool:
            return bool(subject & self.facts(snapshot, snapshot.by_id[cand.hit.chunk.id])[cand.vector_row].speakers)

        chosen: list[_Candidate] = []
        chosen_vectors: list[np.ndarray] = []
        for cand in candidates:
            if len(chosen) >= policy.max_sentences or cand.score < best - policy.keep_within:
                break
            if (
                policy.same_article
                and chosen
                and cand.hit.chunk.article_id != chosen[0].hit.chunk.article_id
                and not comparison
                and not by_subject(cand)
            ):
                # A loosely related sentence of another article (same names, another event) is the usual
                # wrong extra; another article is quoted when the question compares two events, or when the
                # sentence names as its speaker the one a "what did X say" question asks about.
                continue
            vector = snapshot.sentence_vectors(snapshot.by_id[cand.hit.chunk.id])[cand.vector_row]
            if any(float(vector @ v) >= policy.duplicate_similarity for v in chosen_vectors):
                continue
            chosen.append(cand)
            chosen_vectors.append(vector)
        attributed = {c.hit.chunk.id for c in chosen if by_subject(c)} if subject else set()
        if attributed:
            # Once the answer quotes the asked speaker by name, a sentence of another passage that does not name
            # them is someone else's words or narration ("A summit will be held …, aiming to develop a “…”").
            chosen = [c for c in chosen if c.hit.chunk.id in attributed or by_subject(c)]
        return chosen


def stream_text(answer: Answer) -> Iterator[AnswerEvent]:
    """An answer already complete, streamed like a generated one: word pieces, then the answer."""
    yield from re.findall(r"\S+\s*", answer.text)
    yield answer


class GenerativeAnswerer:
    """Answers with an LLM over the top passages, verifies its citations, and falls back to quoting.

    Anything the provider does wrong (unreachable, slow, rate-limited, an empty or marker-less reply,
    no sentence that its cited passage supports) yields the extractive answer with a warning instead.
    Pieces of the reply are yielded as they arrive; the final Answer is authoritative and, after a
    fallback, replaces what was streamed.
    """

    def __init__(
        self,
        generator: OpenAIGenerator,
        verifier: Verifier,
        fallback: ExtractiveAnswerer,
        passages: int = 5,
        max_sentences: int = 3,
        system_role: bool = True,
    ) -> None:
        self.generator = generator
        self.verifier = verifier
        self.fallback = fallback
        self.passages = passages
        self.max_sentences = max_sentences
        self.system_role = system_role

    def stream(
        self, question: str, question_vector: np.ndarray, hits: list[ScoredChunk], snapshot: Snapshot, k: int
    ) -> Iterator[AnswerEvent]:
        chunks = [h.chunk for h in hits[: min(k, self.passages)]]
        if not chunks:
            yield from stream_text(self.fallback.answer(question, question_vector, hits, snapshot))
            return
        messages = build_messages(question, chunks, self.max_sentences, self.system_role)
        started = time.perf_counter()
        pieces: list[str] = []
        try:
            for piece in self.generator.stream(messages):
                pieces.append(piece)
                yield piece
        except ProviderError as exc:
            yield from self._fall_back(question, question_vector, hits, snapshot, str(exc), streamed=bool(pieces))
            return
        reply = "".join(pieces)
        generated = time.perf_counter()
        stored = {c.id: snapshot.sentence_vectors(snapshot.by_id[c.id]) for c in chunks if c.id in snapshot.by_id}
        checked = self.verifier.verify(reply, self.verifier.evidence(chunks, stored))
        timings = {
            "generate": round((generated - started) * 1000, 3),
            "verify": round((time.perf_counter() - generated) * 1000, 3),
        }
        if checked.refused:
            yield Answer(question, NO_ANSWER, False, [], hits, timings_ms=timings, mode="llm")
            return
        if not checked.citations or checked.supported == 0:
            if not checked.citations:
                reason = "the LLM's reply carried no valid [n] citation"
            else:
                reason = "no sentence of the LLM's reply is supported by the passage it cites"
            log.info("rejected LLM reply: %r", reply[:2000])
            yield from self._fall_back(question, question_vector, hits, snapshot, reason, streamed=True)
            return
        yield Answer(
            question, checked.text, True, checked.citations, hits, timings_ms=timings, mode="llm", flags=checked.flags
        )

    def _fall_back(
        self,
        question: str,
        question_vector: np.ndarray,
        hits: list[ScoredChunk],
        snapshot: Snapshot,
        reason: str,
        streamed: bool,
    ) -> Iterator[AnswerEvent]:
        log.warning("LLM answer unusable, answering extractively: %s", reason)
        answer = self.fallback.answer(question, question_vector, hits, snapshot)
        answer.warnings.append(f"LLM answer unavailable ({reason}); this answer quotes the sources instead")
        # Pieces of a rejected reply may already be out; the final answer then replaces them.
        yield from stream_text(answer) if not streamed else iter([answer])
