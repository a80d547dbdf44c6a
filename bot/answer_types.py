"""Does a span have the shape of the answer the question asks for? ("How many …?" wants a number.)

When the article does not hold the answer, the reader still returns its best span, and for a question about a
quantity that is often a span with no quantity in it: "How much fuel did the government deliver?" → "food",
"How far is Idlib from Aleppo?" → "east". The verifier's other features cannot learn this from SQuAD: there the
reader almost always returns a number to a number question (6 such spans in 4,384 served held-out questions,
2 in the 1,713 of the shipped fit: ``training/fit_verifier.py`` prints them, here with ``--answerable-per-half
1200 --hard-per-half 1200 --antonyms-per-half 0``), so a weight would be fitted on nothing. None of those 8 was
a right answer, so the rule is a rule: such a span gets P(right) = 0.

Vague quantities count ("very limited", "heavy losses", "a handful"): the reader's right answer to "how many
fighters were lost?" can be one. Only questions whose expected shape is unambiguous: "how many/much" (a number
or a quantity word), "how far" (a number or a distance), "how long" (a number, a duration or a length),
"what/which year" (digits). "When" is left out: "after the war" answers it.
"""

from __future__ import annotations

import re

_NUMBER = (
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|"
    r"millions?|billions?|trillions?|dozens?|scores?|zero|half|quarter|single|double|triple|twice|once|thrice|"
    r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|percent|per\s*cent|"
    # vague quantifiers: an answer to "how many?" need not be a number
    r"several|few|many|much|more|less|fewer|most|least|lots?|plenty|little|handful|numerous|countless|"
    r"innumerable|some|any|none|no|nothing|all|every|enough|sufficient|insufficient|majority|minority|"
    r"limited|minimal|negligible|modest|moderate|considerable|substantial|significant|heavy|light|large|small|"
    r"huge|vast|high|low|free)\b"
)
_DURATION = r"\b(?:seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?|decades?|centur(?:y|ies)|millenni(?:um|a)|generations?|lifetime|forever|long|short|briefly|overnight)\b"  # noqa: E501
_DISTANCE = r"\b(?:miles?|kilomet(?:er|re)s?|km|met(?:er|re)s?|feet|foot|yards?|inches|leagues?|near|nearby|close|far|adjacent|border(?:s|ing)?)\b"  # noqa: E501

# (what the question says, the shapes any one of which the answer must have)
_EXPECTED: tuple[tuple[re.Pattern[str], tuple[re.Pattern[str], ...]], ...] = tuple(
    (re.compile(question, re.IGNORECASE), tuple(re.compile(shape, re.IGNORECASE) for shape in shapes))
    for question, shapes in (
        (r"\bhow (?:many|much)\b", (_NUMBER,)),
        (r"\bhow far\b", (_NUMBER, _DISTANCE)),
        (r"\bhow long\b", (_NUMBER, _DURATION, _DISTANCE)),
        (r"\b(?:what|which) year\b(?! of age)", (r"\d",)),
    )
)


def fits_the_question(question: str, answer: str) -> bool:
    """False when the question asks for a quantity, distance, duration or year and ``answer`` has none."""
    for asks, shapes in _EXPECTED:
        if asks.search(question):
            return any(shape.search(answer) for shape in shapes)
    return True
