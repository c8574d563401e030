"""Display only: what a page, an export or the API shows, assembled from selectors' reads, runner's
comparison and ``charts/``. Never writes; views call these and render."""
