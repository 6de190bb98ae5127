from __future__ import annotations

from rag.question import Question, compound_parts
from rag.text import terms
from tests.rag.test_lexical import term_index


def test_a_question_is_parsed_into_terms_weights_and_its_setting() -> None:
    index = term_index([["putin", "rate", "relat"], ["video", "call"], ["china"], ["china", "video"]])
    question = Question.parse("How did Putin rate relations with China during the December video call?", index)
    assert question.terms == tuple(terms(question.text))
    assert set(question.weights) <= set(question.terms) and question.total == sum(question.weights.values())
    assert question.weights["putin"] > question.weights["china"]  # rarer in the index, weighs more
    assert question.setting == frozenset(terms("December video call"))
    assert question.share({"putin"}) == question.weights["putin"] / question.total
    assert Question.parse("What did they say?", index).total == 1.0  # nothing informative: nothing to divide by


def test_a_hyphenated_question_word_counts_once() -> None:
    # "year-end" is indexed whole and by its parts; weighing all three made it half of the question.
    index = term_index([["year-end", "year", "end", "sanction"], ["video", "call"], ["year"]])
    question = Question.parse("What did Xi tell Putin about sanctions during their year-end video call?", index)
    weights, total = question.weights, question.total
    assert "year-end" in weights and "year" not in weights and "end" not in weights
    assert total == sum(weights.values())
    # A part the question also uses as a word of its own still counts.
    assert compound_parts("Russia-China ties: what does Russia want?") == {"russia-china": {"china"}}
    assert "russia" in Question.parse("Russia-China ties: what does Russia want?", index).weights
    assert compound_parts("no compound here") == {}


def test_the_parts_of_a_hyphenated_word_the_corpus_never_writes_still_count() -> None:
    # No document says "xi-putin": its parts are all of that word that can match anything.
    index = term_index([["xi", "putin", "statement"], ["video", "call"], ["year-end", "year", "end"]])
    weights = Question.parse("In how many fields did the Xi-Putin statement agree?", index).weights
    assert "xi" in weights and "putin" in weights
    assert index.document_frequency("xi-putin") == 0
