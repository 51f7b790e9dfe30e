"""The client-side pacer keeps a model of the portal's leaky bucket under its limit, across threads."""

import threading
import time

from b24_1c_assets.bitrix24.pacing import Pacer, safety_margin, shared_pacer


def portal_counter_peaks(arrivals: list[float], rate: float) -> list[float]:
    """The portal's counter after each request: +1 per request, drained at `rate` per second."""
    counter, previous, peaks = 0.0, None, []
    for moment in sorted(arrivals):
        if previous is not None:
            counter = max(0.0, counter - rate * (moment - previous))
        counter += 1
        peaks.append(counter)
        previous = moment
    return peaks


def test_pacer_keeps_the_portal_counter_under_its_bucket_while_allowing_the_burst():
    rate, burst = 20.0, 10
    pacer = Pacer(rate, burst)
    arrivals: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(12):
            pacer.acquire()
            with lock:
                arrivals.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peaks = portal_counter_peaks(arrivals, rate)
    assert len(arrivals) == 48
    assert max(peaks) <= burst  # the portal would never have refused one
    assert max(peaks) >= burst - safety_margin(burst) - 1  # the burst was really used, not smoothed away
    assert pacer.acquired == 48 and pacer.waited_seconds > 0


def test_fractional_rate_is_supported():
    pacer = Pacer(0.5, 3)
    assert pacer.local_burst == 2
    pacer.acquire()
    pacer.acquire()  # two fit the (margin-reduced) bucket
    assert pacer.acquired == 2


def test_one_pacer_per_webhook_shared_by_clients():
    first = shared_pacer("http://127.0.0.1:1/rest/1/secret/", 2.0, 50)
    assert shared_pacer("http://127.0.0.1:1/rest/1/secret/", 2.0, 50) is first
    assert shared_pacer("http://127.0.0.1:1/rest/1/other/", 2.0, 50) is not first
    assert "secret" not in repr(first)
