"""Compare models: one image through two or three networks, block layer by block layer, with
map-agreement numbers at matched depths and a layer × layer similarity matrix."""

from dashboard import compare_view, runner

show = compare_view.show  # navigation.page_show (the Review page) redraws a saved comparison with it

if __name__ == "__main__":
    runner.run_page("compare", compare_view.show, compare_view.controls)
