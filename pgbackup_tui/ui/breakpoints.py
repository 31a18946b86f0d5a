"""The widths where the app's screens change their layout: Textual's HORIZONTAL_BREAKPOINTS, which
put a class on a screen (`-narrow`, `-wide`) for its CSS to read. The app and the screens that
lay out differently when narrow (the backup dialog) name the same ones."""

NARROW_BELOW = 69  # the tree's min-width (28), its border and the tabs' min-width (40): app.tcss
WIDTH_CLASSES = [(0, "-narrow"), (NARROW_BELOW, "-wide")]
