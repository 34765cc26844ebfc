"""Questions that ask several things: where they are cut, and what stays whole."""

from __future__ import annotations

import pytest

from rag.decompose import (
    QuestionSplitter,
    asked_kind,
    asked_place_or_body,
    asks_for_quantity,
    asks_for_time,
    is_polar,
    refers_back,
    singular,
    situation_and_question,
)


@pytest.fixture
def split():
    return QuestionSplitter().run


def test_a_comma_and_that_opens_a_new_question_cuts_it_in_two(split):
    assert split("What share of pools are at risk of closure, and how much has the government committed to pitches?") == [
        "What share of pools are at risk of closure?",
        "How much has the government committed to pitches?",
    ]


def test_and_followed_by_a_question_word_cuts_without_a_comma(split):
    assert split("Who wrote the article and when was the White Paper published?") == [
        "Who wrote the article?",
        "When was the White Paper published?",
    ]


def test_two_question_sentences_are_two_parts(split):
    assert split("Who wrote the article? What does the White Paper say about leisure centres?") == [
        "Who wrote the article?",
        "What does the White Paper say about leisure centres?",
    ]


def test_a_statement_before_the_question_is_carried_into_every_part(split):
    parts = split("The article cites a White Paper. What is its health mission, and how much goes to grassroots pitches?")
    assert parts == [
        "The article cites a White Paper. What is its health mission?",
        "The article cites a White Paper. How much goes to grassroots pitches?",
    ]


@pytest.mark.parametrize(
    "question",
    [
        "What are the pros and cons of the fund?",  # "and" joins nouns
        "Which new structures emerge under devolution and in health?",
        "Who wrote the article and when?",  # the second part is too short to stand alone
        "Is it true that councils and the NHS collaborate?",
        "How many missions are there?",
        "Tell me about the missions.",  # no question sentence
        "What is A? What is B? What is C? What is D?",  # more parts than allowed
        "Which mission covers well-being, and what does it aim for?",  # the second part leans on the first
        "What is that White Paper called and when was it published?",
    ],
)
def test_a_question_that_asks_one_thing_stays_whole(split, question):
    assert split(question) == [question]


def test_refers_back_reads_the_question_sentence_only():
    assert refers_back("What does it aim for?")
    assert refers_back("Which places received them?")
    assert not refers_back("How much has the government committed to pitches?")
    # A pronoun in the statement carried before the question does not count.
    assert not refers_back("It was announced last year. How big is the UK Shared Prosperity Fund?")


def test_a_part_is_searched_with_its_own_question_unless_it_leans_on_the_statements(split):
    first, second = split(
        "The article says health inequalities are a priority. Which example does it give of policy working "
        "against that aim, and what is the White Paper's health mission?"
    )
    # "it" and "that aim" lean on the statement: searched whole.
    assert QuestionSplitter.search_text(first) == first
    # The second part names its subject itself: the statement about the article must not steer its search.
    assert QuestionSplitter.search_text(second) == "What is the White Paper's health mission?"
    # Without statements a part is its own question.
    assert QuestionSplitter.search_text("How much goes to grassroots pitches?") == "How much goes to grassroots pitches?"


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        QuestionSplitter(max_parts=1)
    with pytest.raises(ValueError):
        QuestionSplitter(min_words=0)


@pytest.mark.parametrize(
    ("question", "polar"),
    [
        ("Do leisure centres qualify for energy support?", True),
        ("Is levelling up about making every place the same?", True),
        ("Can't councils bid on their own?", True),
        ("My wife and I both get the state pension. Will our housing benefit be reduced?", True),
        ("According to Michael Gove, is the Levelling Up Fund meant to work on its own?", True),
        ("In the White Paper, are the missions grouped?", True),
        ("According to Michael Gove, what is the fund for?", False),
        ("What does the White Paper mean by social capital?", False),
        ("Who wrote the article?", False),
        ("I rent my flat. How much will I get?", False),
    ],
)
def test_is_polar_reads_the_question_sentence_for_an_opening_auxiliary(question, polar):
    assert is_polar(question) is polar


@pytest.mark.parametrize(
    ("question", "quantity"),
    [
        ("How many missions does the White Paper set out?", True),
        ("How much money goes into the Innovation Accelerators?", True),
        ("By how much will public R&D investment rise?", True),
        ("What percentage of the spend does the fund make up?", True),
        ("What share of swimming pools are at risk?", True),
        ("According to the article, how many pools are at risk?", True),
        ("The article mentions pools. How many are at risk?", True),
        ("How does the White Paper define social capital?", False),
        ("Which councils will pilot the covenants?", False),
        ("What is the number one priority?", False),
    ],
)
def test_asks_for_quantity_reads_the_question_sentence_for_how_many_and_how_much(question, quantity):
    assert asks_for_quantity(question) is quantity


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("Which councils will pilot the Community Covenant approaches?", True),
        ("Which 20 towns and cities were chosen for the programme?", True),
        ("With which combined authorities will the government open negotiations?", True),
        ("Which of the UK's most successful cities lag behind?", True),
        ("What organisation is the author from?", True),
        ("I live in Wales. Which country should I pay my pension tax to?", True),
        ("According to the article, which government minister is quoted?", True),
        ("Which areas will get Education Investment Areas?", False),
        ("Which regions have signed devolution deals, according to the article?", True),
        ("In which region's standard should transport be closer to?", True),
        ("Which regional structures emerged under devolution deals?", False),
        ("Which round of the fund was announced?", False),
        ("What does the council do?", False),
        ("What percentage of primary school children should reach the standard?", False),
        ("Which town centres has Mutual Ventures helped to regenerate?", True),
        ("Who wrote the article?", False),
    ],
)
def test_asked_kind_reads_which_or_what_before_a_kind_of_named_thing(question, names):
    assert (asked_kind(question) is not None) is names


def test_asked_kind_finds_the_kind_in_either_number():
    kind = asked_kind("Which town centres has Mutual Ventures helped to regenerate?")
    assert kind.search("to regenerate a town centre") and not kind.search("the towns")
    assert asked_kind("Which cities lag behind?").search("the city of Leeds") and asked_kind("Who wrote it?") is None


def test_the_situation_told_before_a_question_is_cut_from_the_question():
    assert situation_and_question("I am 67 and rent my flat.  My wife works. Can I get Housing Benefit?") == (
        "I am 67 and rent my flat. My wife works.",
        "Can I get Housing Benefit?",
    )
    assert situation_and_question("I moved in May. Who do I tell? And when?") == ("I moved in May.", "Who do I tell? And when?")


@pytest.mark.parametrize(
    "text",
    ["Can I get Housing Benefit?", "Who wrote it? I read it yesterday.", "Tell me about the missions."],
)
def test_nothing_is_moved_about_when_there_is_no_situation_before_a_final_question(text):
    assert situation_and_question(text) == ("", text)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which local authority areas were named as Education Investment Areas?", "local authority"),
        ("Which universities will lead the new Innovation Accelerators?", "university"),
        ("Which leisure centres does the article say have already closed?", "leisure centre"),
        ("According to the White Paper, with which combined authorities will talks open?", "combined authority"),
        ("What organisation is the author from?", "organisation"),
        ("Which town is DLUHC moving to?", "town"),
        ("Which regions will host the Innovation Accelerator pilots?", "region"),
        ("Which minister does the article quote?", None),
        ("Which mayors signed the deal?", None),
        ("What does the fund pay for?", None),
    ],
)
def test_asked_place_or_body_is_the_singular_kind_of_a_which_question_about_places_or_bodies(question, kind):
    assert asked_place_or_body(question) == kind


@pytest.mark.parametrize(("plural", "one"), [("authorities", "authority"), ("leisure centres", "leisure centre"),
                                             ("towns", "town"), ("churches", "church"), ("town", "town"), ("address", "address")])
def test_singular_of_a_kind_noun(plural, one):
    assert singular(plural) == one


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("When was the article published?", True),
        ("When will the Levelling Up Advisory Council first report?", True),
        ("According to the White Paper, when will the missions be reviewed?", True),
        ("In what year will the health mission be met?", True),
        ("What date was the fund announced?", True),
        ("By when should every area have a devolution deal?", True),
        ("When the article was written, which round of the fund had just been announced?", False),
        ("What does the fund pay for?", False),
        ("How many missions are there?", False),
    ],
)
def test_asks_for_time_reads_when_questions_not_when_clauses(question, asks):
    assert asks_for_time(question) is asks
