"""``desktop_app.frame_pacing.FramePacer``: when the render thread sleeps before a frame (no Dear PyGui needed)."""

from __future__ import annotations

import pytest

from desktop_app import frame_pacing
from desktop_app.frame_pacing import SETTLE_FRAMES, FramePacer


class FakeGlfw:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def glfwWaitEventsTimeout(self, timeout: float) -> None:  # noqa: N802 (GLFW's name)
        self.calls.append(("wait", timeout))

    def glfwPostEmptyEvent(self) -> None:  # noqa: N802 (GLFW's name)
        self.calls.append(("wake", None))


@pytest.fixture
def glfw(monkeypatch: pytest.MonkeyPatch) -> FakeGlfw:
    fake = FakeGlfw()
    monkeypatch.setattr(frame_pacing, "_glfw", lambda: fake)
    return fake


def test_an_idle_app_sleeps_until_input_a_wake_up_or_the_tick(glfw: FakeGlfw) -> None:
    pacer = FramePacer(tick_s=0.25)
    assert pacer.wait(streaming=False) is True
    pacer.wake()
    assert glfw.calls == [("wait", 0.25), ("wake", None)]


def test_streaming_draws_every_frame(glfw: FakeGlfw) -> None:
    pacer = FramePacer()
    assert [pacer.wait(streaming=True) for _ in range(3)] == [False] * 3
    assert glfw.calls == []


def test_a_frame_that_changed_something_is_followed_by_settling_frames(glfw: FakeGlfw) -> None:
    pacer = FramePacer()
    pacer.after_frame(changed=True)
    waits = [pacer.wait(streaming=False) for _ in range(SETTLE_FRAMES + 1)]
    assert waits == [False] * SETTLE_FRAMES + [True]


def test_always_draw_turns_the_waiting_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(frame_pacing.ALWAYS_DRAW_ENV, "1")
    pacer = FramePacer()
    assert pacer.wait(streaming=False) is False
    pacer.wake()  # nothing to wake: no error


def test_the_real_library_exports_the_glfw_functions() -> None:
    lib = frame_pacing._glfw()
    assert lib is not None and lib.glfwWaitEventsTimeout and lib.glfwPostEmptyEvent


def test_a_wait_ended_by_input_is_followed_by_a_burst_of_frames(glfw: FakeGlfw) -> None:
    """Keys typed faster than idle frames come reach the widgets a few per frame: after an early wake-up frames come
    without waiting for ``INPUT_BURST_S``, so typed text never lags behind by seconds (it did, a key per tick)."""
    now = [0.0]

    def woken_early(timeout: float) -> None:
        now[0] += timeout / 10

    glfw.glfwWaitEventsTimeout = woken_early
    pacer = FramePacer(tick_s=0.5, clock=lambda: now[0])
    assert pacer.wait(streaming=False) is True
    frames = 0
    while not pacer.wait(streaming=False):  # the burst: frames at once until it is over
        frames += 1
        now[0] += 1 / 60
    assert frames == pytest.approx(frame_pacing.INPUT_BURST_S * 60, abs=1)

    def the_whole_tick(timeout: float) -> None:
        now[0] += timeout

    glfw.glfwWaitEventsTimeout = the_whole_tick
    now[0] += frame_pacing.INPUT_BURST_S  # past the burst the last early wake-up began
    assert [pacer.wait(streaming=False) for _ in range(3)] == [True, True, True]  # idle: one frame per tick

    def woken_by_a_message(timeout: float) -> None:
        pacer.wake()  # a background thread's message, not input: one frame, no burst
        now[0] += timeout / 10

    glfw.glfwWaitEventsTimeout = woken_by_a_message
    assert [pacer.wait(streaming=False) for _ in range(3)] == [True, True, True]
