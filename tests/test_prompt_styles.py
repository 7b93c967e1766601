"""`eval.prompt_style`: the prompts, rendered through Qwen3-Thinking-2507's real chat template,
equal hand-written strings. `ml-ssd` is the paper's released evaluation (apple/ml-ssd
`evaluation/benchmark.py`: LCB_PROMPT_WITHOUT_STARTER_CODE / LCB_PROMPT_WITH_STARTER_CODE, one
user turn); `livecodebench` is LiveCodeBench's generic template with its system message
(`lcb_runner/prompts/code_generation.py`, current wording)."""

from pathlib import Path

import pytest
from settings_from_config import eval_settings

from ssd_jax.errors import ConfigError
from ssd_jax.evaluation.prompts import benchmark_messages
from ssd_jax.problems.types import BenchmarkProblem, IOTest
from ssd_jax.text.chat import ChatTemplate

TEMPLATE = ChatTemplate((Path(__file__).parent / "data/chat_templates/qwen3_thinking_2507.jinja").read_text())
STDIN = BenchmarkProblem(
    id="abc999_a", source="livecodebench", title="Sum", statement="Given A and B, print A+B.", starter_code="",
    difficulty="easy", kind="stdin", tests=(IOTest("1 2\n", "3\n", "stdin"),),
)
FUNCTIONAL = BenchmarkProblem(
    id="two-sum", source="livecodebench", title="Two Sum", statement="Return a + b.",
    starter_code="class Solution:\n    def add(self, a: int, b: int) -> int:\n        ",
    difficulty="easy", kind="functional", tests=(IOTest("1\n2", "3", "functional"),), func_name="add",
)

ML_SSD_STDIN = """<|im_start|>user
You will be given a question (problem specification) and will generate a correct Python program that matches the specification and passes all tests. You will NOT return anything except for the program.

Question: Given A and B, print A+B.

Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.
```python
  # YOUR CODE HERE
```<|im_end|>
<|im_start|>assistant
<think>
"""
ML_SSD_FUNCTIONAL = """<|im_start|>user
You will be given a question (problem specification) and will generate a correct Python program that matches the specification and passes all tests. You will NOT return anything except for the program.

Question: Return a + b.

You will use the following starter code to write the solution to the problem and enclose your code within delimiters as follows.
```python
class Solution:
    def add(self, a: int, b: int) -> int:
        
```<|im_end|>
<|im_start|>assistant
<think>
"""
LCB_SYSTEM = ("<|im_start|>system\nYou are an expert Python programmer. You will be given a question (problem "
              "specification) and will generate a correct Python program that matches the specification and passes "
              "all tests. You will NOT return anything except for the program.<|im_end|>\n")
LCB_STDIN = LCB_SYSTEM + """<|im_start|>user
### Question:
Given A and B, print A+B.

### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.
```python
# YOUR CODE HERE
```

### Answer: (use the provided format with backticks)

<|im_end|>
<|im_start|>assistant
<think>
"""
LCB_FUNCTIONAL = LCB_SYSTEM + """<|im_start|>user
### Question:
Return a + b.

### Format: You will use the following starter code to write the solution to the problem and enclose your code within delimiters.
```python
class Solution:
    def add(self, a: int, b: int) -> int:
        
```

### Answer: (use the provided format with backticks)

<|im_end|>
<|im_start|>assistant
<think>
"""


@pytest.mark.parametrize("style, problem, expected", [
    ("ml-ssd", STDIN, ML_SSD_STDIN),
    ("ml-ssd", FUNCTIONAL, ML_SSD_FUNCTIONAL),
    ("livecodebench", STDIN, LCB_STDIN),
    ("livecodebench", FUNCTIONAL, LCB_FUNCTIONAL),
])
def test_rendered_prompts_equal_the_hand_written_ones(style, problem, expected):
    settings = eval_settings(temperatures=(1.0,), prompt_style=style)
    messages = benchmark_messages(problem, settings.system_message, settings.prompt_style)
    assert TEMPLATE.render(messages, add_generation_prompt=True) == expected


def test_an_unknown_prompt_style_is_named():
    with pytest.raises(ConfigError, match="config.eval.prompt_style='lcb'"):
        eval_settings(temperatures=(1.0,), prompt_style="lcb")
