"""The browser chat of the assistant (Gradio).

``ui.app.serve`` starts it (``rag serve``); ``ui.app.build_app`` builds the page for
tests. ``ui.render`` and ``ui.service`` hold the gradio-free parts. Gradio is only
imported by ``ui.app``.
"""
