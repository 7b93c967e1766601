"""Writes the small benchmark files the evaluation tests and benchmarks/execution.py read.

They follow the real formats: LiveCodeBench code_generation_lite rows (JSONL; private tests
as a JSON string or as base64 → zlib → pickle → JSON) and HumanEval rows (.jsonl.gz).
Run from the repository root: `python tests/data/evaluation/make_fixtures.py`.
"""

import base64
import gzip
import json
import pickle
import random
import zlib
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(0)


def compressed(tests):
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def stdin_tests(pairs):
    return [{"input": i, "output": o, "testtype": "stdin"} for i, o in pairs]


def functional_tests(pairs):
    return [{"input": "\n".join(json.dumps(a) for a in args), "output": json.dumps(out), "testtype": "functional"}
            for args, out in pairs]


def row(qid, title, content, platform, date, difficulty, public, private, starter="", func_name=None, compress=False):
    return {
        "question_title": title, "question_content": content, "platform": platform, "question_id": qid,
        "contest_id": qid.split("_")[0], "contest_date": date, "starter_code": starter, "difficulty": difficulty,
        "public_test_cases": json.dumps(public), "private_test_cases": compressed(private) if compress else json.dumps(private),
        "metadata": json.dumps({"func_name": func_name} if func_name else {}),
    }


def a_plus_b():
    pairs = [(f"{a} {b}\n", f"{a + b}\n") for a, b in [(rng.randint(-10**9, 10**9), rng.randint(-10**9, 10**9)) for _ in range(12)]]
    return row("abc360_a", "A+B", "Given integers A and B on one line, print A+B.", "atcoder", "2024-08-10T00:00:00",
               "easy", stdin_tests(pairs[:2]), stdin_tests(pairs[2:]), compress=True)


def sum_and_mean():
    pairs = []
    for size in (1, 2, 4, 8, 16, 256, 1024, 4096, 8192):
        values = [rng.randint(0, 10**6) for _ in range(size)]
        values[-1] -= sum(values) % max(1, size // 4)  # the mean has at most two decimals
        mean = sum(values) / size
        pairs.append((f"{size}\n{' '.join(map(str, values))}\n", f"{sum(values)}\n{mean}\n"))
    return row("abc390_b", "Sum and Mean", "N is a power of two. Read N, then N integers. Print their sum, then their mean.",
               "atcoder", "2025-02-01T12:00:00", "medium", stdin_tests(pairs[:2]), stdin_tests(pairs[2:]))


def two_sum():
    pairs = []
    for size in (2, 3, 4, 10, 100, 1000, 5000, 10000, 20000):
        nums = rng.sample(range(-10**7, 10**7), size)
        i, j = sorted(rng.sample(range(size), 2))
        target = nums[i] + nums[j]
        values = set(nums)
        if sum(target - x in values and target - x != x for x in nums) != 2:
            continue  # the answer must be unique
        pairs.append(([nums, target], [i, j]))
    starter = "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        "
    return row("3100", "two-sum", "Return the indices [i, j], i < j, of the only two numbers adding up to target.",
               "leetcode", "2024-11-02T00:00:00", "easy", functional_tests(pairs[:2]), functional_tests(pairs[2:]),
               starter=starter, func_name="twoSum", compress=True)


def max_subarray():
    pairs = []
    for size in (1, 2, 5, 10, 50, 1000, 5000, 20000):
        nums = [rng.randint(-1000, 1000) for _ in range(size)]
        best = current = nums[0]
        for x in nums[1:]:
            current = max(x, current + x)
            best = max(best, current)
        pairs.append(([nums], best))
    starter = "class Solution:\n    def maxSubarray(self, nums: List[int]) -> int:\n        "
    return row("3200", "maximum-subarray", "Return the largest sum of a non-empty contiguous subarray of nums.",
               "leetcode", "2025-04-19T00:00:00", "hard", functional_tests(pairs[:2]), functional_tests(pairs[2:]),
               starter=starter, func_name="maxSubarray")


def reverse_lines():
    pairs = []
    for count in (1, 2, 3, 10, 100, 1000):
        lines = ["".join(rng.choice("abcxyz") for _ in range(rng.randint(1, 30))) for _ in range(count)]
        pairs.append((f"{count}\n" + "\n".join(lines) + "\n", "\n".join(line[::-1] for line in lines) + "\n"))
    return row("abc350_c", "Reverse", "Read N, then N strings; print each reversed, one per line.", "atcoder",
               "2024-07-31T00:00:00", "easy", stdin_tests(pairs[:1]), stdin_tests(pairs[1:]))


HUMANEVAL = [
    {"task_id": "Mini/0", "entry_point": "add",
     "prompt": "from typing import List\n\n\ndef add(numbers: List[int]) -> int:\n    \"\"\" Sum of the numbers.\n    >>> add([1, 2])\n    3\n    \"\"\"\n",
     "canonical_solution": "    return sum(numbers)\n",
     "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate([]) == 0\n    assert candidate([1, 2, 3]) == 6\n    assert candidate([-5, 5]) == 0\n"},
    {"task_id": "Mini/1", "entry_point": "decode_shift",
     "prompt": "\n\ndef encode_shift(s: str):\n    \"\"\" shifts every letter by 5 \"\"\"\n    return \"\".join(chr((ord(c) + 5 - ord('a')) % 26 + ord('a')) for c in s)\n\n\ndef decode_shift(s: str):\n    \"\"\" inverse of encode_shift \"\"\"\n",
     "canonical_solution": "    return \"\".join(chr((ord(c) - 5 - ord('a')) % 26 + ord('a')) for c in s)\n",
     "test": "\n\ndef check(candidate):\n    for word in ['abc', 'hello', 'xyz']:\n        assert candidate(encode_shift(word)) == word\n"},
]

# (problem id, program, expected first non-passing verdict or "pass")
SOLUTIONS = [
    ("abc360_a", "a, b = map(int, input().split())\nprint(a + b)", "pass"),
    ("abc360_a", "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nsys.stdout.write(f'{a + b}\\n')", "pass"),
    ("abc360_a", "a, b = map(int, open(0).read().split())\nprint(a + b)\nexit()", "pass"),
    ("abc360_a", "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n\nif __name__ == '__main__':\n    main()", "pass"),
    ("abc360_a", "a, b = map(int, input().split())\nprint(a - b)", "wrong_answer"),
    ("abc360_a", "a, b = input().split()\nprint(int(a) + int(b) + int('x'))", "error"),
    ("abc390_b", "n = int(input())\nv = list(map(int, input().split()))\nprint(sum(v))\nprint(sum(v) / n)", "pass"),
    ("abc390_b", "import sys\nlines = sys.stdin.readlines()\nv = [int(x) for x in lines[1].split()]\nprint(sum(v))\nprint(f'{sum(v) / len(v):.6f}')", "pass"),
    ("abc390_b", "import os\ndata = os.read(0, 1 << 25).split()\nv = list(map(int, data[1:]))\nprint(sum(v)); print(sum(v) / len(v))", "pass"),
    ("abc390_b", "n = int(input())\nv = list(map(int, input().split()))\nprint(sum(v))\nprint(sum(v) // n)", "wrong_answer"),
    ("abc350_c", "n = int(input())\nfor _ in range(n):\n    print(input()[::-1])", "pass"),
    ("abc350_c", "import sys\nread = sys.stdin.readline\nn = int(read())\nprint('\\n'.join(read().strip()[::-1] for _ in range(n)))", "pass"),
    ("abc350_c", "n = int(input())\nfor _ in range(n):\n    print(input())", "wrong_answer"),
    ("3100", "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i", "pass"),
    ("3100", "class Solution:\n    def twoSum(self, nums, target):\n        index = {x: i for i, x in enumerate(nums)}\n        for i, x in enumerate(nums):\n            j = index.get(target - x)\n            if j is not None and j != i:\n                return (min(i, j), max(i, j))", "pass"),
    ("3100", "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]", "wrong_answer"),
    ("3100", "class Solution:\n    def twoSum(self, nums, target):\n        return nums[len(nums)]", "error"),
    ("3200", "class Solution:\n    def maxSubarray(self, nums: List[int]) -> int:\n        best = cur = nums[0]\n        for x in nums[1:]:\n            cur = max(x, cur + x)\n            best = max(best, cur)\n        return best", "pass"),
    ("3200", "class Solution:\n    def maxSubarray(self, nums):\n        return sum(x for x in nums if x > 0)", "wrong_answer"),
]


def main():
    lcb = HERE / "livecodebench"
    lcb.mkdir(exist_ok=True)
    first, second = [reverse_lines(), a_plus_b(), two_sum()], [sum_and_mean(), max_subarray()]
    for name, rows in (("test.jsonl", first), ("test2.jsonl", second)):
        (lcb / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    with gzip.open(HERE / "HumanEvalMini.jsonl.gz", "wt") as out:
        out.writelines(json.dumps(r) + "\n" for r in HUMANEVAL)
    (HERE / "solutions.jsonl").write_text("".join(
        json.dumps({"problem_id": p, "code": code, "expected": verdict}) + "\n" for p, code, verdict in SOLUTIONS))


if __name__ == "__main__":
    main()
