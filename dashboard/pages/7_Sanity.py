"""Sanity checks: does each method's map change when the model's weights are randomized
(Adebayo et al. 2018), and when the explained class changes?"""

from dashboard import runner, sanity_view

show = sanity_view.show  # navigation.page_show (the Review page) redraws a saved check with it

if __name__ == "__main__":
    runner.run_page("sanity", sanity_view.show, sanity_view.controls)
