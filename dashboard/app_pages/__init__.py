"""The Streamlit pages: thin files that read widgets, ask dashboard.data and draw figures."""
