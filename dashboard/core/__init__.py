"""The dashboard's pure room (no streamlit import): the page table, the view state and its URL
round trip, URL parameters, menus, and the requests the pages make of the library."""
