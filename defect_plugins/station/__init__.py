"""``defect-station``: the RKD-SARSN paper's grade-evaluation system as a local web page.

Huang et al. (Algorithms 16(11):516, 2023, section 3.2, Fig. 20) end their method with a GUI for
the line operator: load an image, see the preprocessing (bilateral filter, contrast stretch, Otsu
threshold, red boxes on the defect), the class, the geometry of the defect and its grade. This
package serves that screen for any exported models of this project (classifier, segmentor,
anomaly) and records the operator's decisions:

=================  ===========================================================================
:mod:`.imaging`    upload checks (format, size, truncation) and images for the page
:mod:`.store`      the SQLite file (WAL mode, one transaction per write)
:mod:`.engine`     :class:`~.engine.Station`: models, inspection, threshold slider, decisions
:mod:`.app`        the Starlette application (pages + JSON API)
:mod:`.guard`      same-origin checks; the login gate (session, CSRF token, role)
:mod:`.accounts`   local users and roles, scrypt password hashes, sessions
:mod:`.audit`      the append-only, hash-chained audit trail
:mod:`.line`       the production line: part triggers (OPC UA, MQTT, folder), the outbox, the line page's data
:mod:`.cli`        ``defect-station`` (:mod:`.admin`: ``defect-station users`` / ``audit``)
=================  ===========================================================================

The rule files and the grading are the deployment layer's (:mod:`defect_plugins.deploy.grading`),
so the station, ``defect-infer`` and ``DefectInferencer`` give the same grades from the same file.
Nothing here imports torch or a toolkit: it runs in the runtime-only install.
"""
