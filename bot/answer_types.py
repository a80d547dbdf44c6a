"""Does a span have the shape of the answer the question asks for? ("How many …?" wants a number.)

When the article does not hold the answer, the reader still returns its best span, and for a question about a
quantity that is often a span with no quantity in it: "How much fuel did the government deliver?" → "food". The
verifier's other features cannot learn this from SQuAD: there the reader almost always returns a quantity to a
quantity question (``training/fit_verifier.py`` prints how often it does not, "answers without the shape asked
for"), so a weight would be fitted on nothing; the rule is a rule: such a span gets P(right) = 0.

So it must hold for right answers: 99.5 % of SQuAD v1.1 train's gold answers to the questions it checks pass
(``pytest -s tests/test_answer_types.py -k gold`` prints it; most of the rest are noisy golds, "Wembley" for a
year). Vague quantities count ("very limited", "heavy losses", "a handful", "tripled"), and only questions whose
expected shape is unambiguous are checked, when the question itself asks it (in its first four words): "how
many/much" (a number or a quantity word), "how long / how much longer / how much time" (also a duration or a
length), "what/which year" (digits). "When" and "how far" are left out: "after the war" and "to the outskirts of
Damascus" answer them.
"""

from __future__ import annotations

import re

# Digits and number words in any case and form ("Twenty-two", "four-year"). Vague quantities as whole words
# in lower case (the answer's first letter lowered), not inside a hyphenated word ("much-needed"), so that a
# name ("the Free Syrian Army") is not taken for a quantity.
_NUMBER = re.compile(
    r"\d|\b(?i:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|"
    r"thousands?|millions?|billions?|trillions?|dozens?|scores?|zero|half|quarter|single|double|triple|twice|once|"
    r"thrice|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|percent|per\s*cent)\b"
)
_VAGUE_QUANTITY = re.compile(
    r"(?<![\w-])(?:several|few|many|much|more|less|fewer|most|least|lots?|plenty|little|handful|numerous|countless|"
    r"innumerable|some|any|none|no|nothing|all|every|both|couple|pair|enough|sufficient|insufficient|majority|"
    r"minority|limited|minimal|negligible|modest|moderate|considerable|substantial|significant|heavy|large|small|"
    r"huge|vast|decades|years|centuries|double[ds]?|tripled?|quadrupled?|halved|multiple|multiplied|"
    r"increased?|decreased?|number|fraction|variety|enormous|tiny|never)(?![\w-])"
)
# Durations and lengths as plain words, hyphenated forms included ("a months-long siege", "a mile-long convoy").
_DURATION = re.compile(
    r"\b(?i:seconds?|minutes?|hours?|days?|nights?|weeks?|fortnights?|months?|years?|decades?|centur(?:y|ies)|"
    r"millenni(?:um|a)|generations?|lifetimes?|life|forever|long|short|briefly|overnight|since|until|till|through|"
    r"throughout|during|temporar(?:y|ily)|permanent(?:ly)?|indefinite(?:ly)?|ever|always|never|ago|"
    r"miles?|kilomet(?:er|re)s?|km|met(?:er|re)s?|feet|foot|yards?|inches|length|tall|wide|deep)\b"
)
_QUANTITY = (_NUMBER, _VAGUE_QUANTITY)


def _asking(words: str) -> re.Pattern[str]:
    """The question asks this itself, within its first four words ("In how many …", "By how much …"), not in a
    clause about something else ("… affects how much electricity an area uses?")."""
    return re.compile(rf"^\W*(?:\w+\W+){{0,3}}?(?:{words})\b", re.IGNORECASE)


# (what the question says, the shapes any one of which the answer must have), first match wins: "how much
# longer" and "how much time" ask for a duration, not an amount. "How far" is not checked: "to the outskirts
# of Damascus" answers it.
_EXPECTED: tuple[tuple[re.Pattern[str], tuple[re.Pattern[str], ...]], ...] = (
    (_asking(r"how (?:much )?longer|how long|how much time"), (*_QUANTITY, _DURATION)),
    (_asking(r"how (?:many|much)"), _QUANTITY),
    (re.compile(r"\b(?:what|which) year\b(?! of\b)", re.IGNORECASE), (re.compile(r"\d"),)),
)


def fits_the_question(question: str, answer: str) -> bool:
    """False when the question asks for a quantity, a duration or a year and ``answer`` has none."""
    answer = re.sub(r"^\W*\w", lambda first: first.group().lower(), answer)  # "Many", "“Many" open as "many"
    for asks, shapes in _EXPECTED:
        if asks.search(question):
            return any(shape.search(answer) for shape in shapes)
    return True
