"""The reading-time estimate that holds chapters to their budget."""

from ptdeploy.tools.reading import MAX_CELLS, MAX_WORDS, Reading, reading


def test_reading_counts_words_code_lines_and_output_lines():
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "# A title\nthree more words"},
            {
                "cell_type": "code",
                "source": ["x = 1\n", "\n", "print(x)"],
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": "1\n2\n"},
                    {"output_type": "display_data", "data": {"image/png": "...", "text/plain": "<Figure>"}},
                    {"output_type": "execute_result", "data": {"text/plain": ["a\n", "b"]}},
                ],
            },
        ]
    }
    r = reading(nb)
    assert (r.words, r.cells, r.code_lines) == (6, 2, 2)  # blank code lines are not read
    assert r.output_lines == 2 + 10 + 2  # a figure counts as ten lines
    assert r.minutes == 6 / 180 + 2 / 25 + 14 / 40


def test_a_chapter_over_budget_says_what_is_over():
    assert Reading(MAX_WORDS, MAX_CELLS, 0, 0).over_budget() == []
    over = Reading(MAX_WORDS + 1, MAX_CELLS + 1, 0, 0).over_budget()
    assert [o.split()[1] for o in over] == ["Markdown", "cells"]
    assert "minutes" in Reading(0, 1, 25 * 31, 0).over_budget()[0]
