import threading, time
def test_threads():
    time.sleep(1)
    print([t.name for t in threading.enumerate()])
