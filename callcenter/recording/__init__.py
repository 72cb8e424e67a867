"""Call recording per queue: what a recording is called, where its file lies, how long
it is, and when it goes.

* :mod:`.naming` (pure): a recording's name and file, from safe ids only;
* :mod:`.files`: the recordings directory read and pruned without following symlinks
  or leaving it;
* :mod:`.retention`: which recordings have outlived their queue's ``retention_days``
  (pure), and the pass that removes them (files, then records).

The ARI side (start on answer, stop and link at the end, the periodic retention task)
is :mod:`ari_apps.recording`.
"""
