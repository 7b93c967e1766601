"""The host side of the paged KV cache: a free list of pages, its high-water mark, page arithmetic.

A sample of a prompt of `L` tokens with a budget of `N` new tokens writes cache positions
`0 .. L + N - 2` (the last drawn token is never fed back), so it needs `ceil((L + N - 1) / page)`
pages. The prompt's first `L - 1` tokens are prefilled once per prompt into `prefix_pages`
pages shared by all its samples; every sample owns the rest (`own_pages`), starting at the page
holding position `L - 1`, its first write (a copy of the shared one when that page is partly
filled: copy-on-write). All of a sample's pages are reserved when it is admitted, so a run never
runs out of pages mid-sample.
"""

from __future__ import annotations

from ssd_jax.models.kv_cache import NULL_PAGE


def prefix_pages(prompt_len: int, page_size: int) -> int:
    """Pages holding a prompt's first `prompt_len - 1` tokens (shared by all its samples)."""
    return -(-(prompt_len - 1) // page_size)


def shared_pages(prompt_len: int, page_size: int) -> int:
    """The leading prefix pages a sample reads as they are (the full ones; it never writes them)."""
    return (prompt_len - 1) // page_size


def own_pages(prompt_len: int, budget: int, page_size: int) -> int:
    """Pages a sample owns: from the one holding position `prompt_len - 1` to its last position."""
    return -(-(prompt_len + budget - 1) // page_size) - shared_pages(prompt_len, page_size)


def default_pool_pages(slots: int, largest_sample_pages: int) -> int:
    """The sampler's page pool per cache replica when none is configured: room for every slot's
    largest sample, rounded up to a power of two (so runs of similar size share compiled programs)."""
    return 1 << (slots * largest_sample_pages - 1).bit_length()


class PageAllocator:
    """Pages `1 .. num_pages - 1` of one cache (page `NULL_PAGE` is never handed out).

    `peak` is the most pages ever held at once: a run's high-water mark, at most `capacity`.
    """

    def __init__(self, num_pages: int):
        if num_pages < 2:
            raise ValueError(f"a paged cache needs at least 2 pages (one is the null page), got {num_pages}")
        self.capacity = num_pages - 1
        self._free = [page for page in range(num_pages - 1, -1, -1) if page != NULL_PAGE]
        self.peak = 0

    @property
    def free(self) -> int:
        return len(self._free)

    @property
    def used(self) -> int:
        return self.capacity - len(self._free)

    def allocate(self, count: int) -> list[int]:
        """`count` pages, or RuntimeError if fewer are free (callers check `free` first)."""
        if count > len(self._free):
            raise RuntimeError(f"asked for {count} pages with {len(self._free)} free")
        pages = [self._free.pop() for _ in range(count)]
        self.peak = max(self.peak, self.used)
        return pages

    def release(self, pages: list[int]) -> None:
        self._free.extend(reversed(pages))
