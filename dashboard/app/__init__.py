"""The dashboard's Streamlit room: the one page shell, navigation, sidebar, widgets, messages,
cache, capture, the Save to review panel and the long-work gate (``jobs``)."""
