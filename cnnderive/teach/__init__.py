"""Teacher mode: `cnnderive generate` draws exercise variants from a template and writes a problem
sheet, an answer key, Moodle XML and a PrairieLearn question.

`template` reads a template, `draw` draws screened variants, `screen` rejects accidents (ties, exact
ReLU zeros, a mistake giving the right number), `answers` computes what each variant asks, and
`sheet`, `moodle`, `prairielearn` write the outputs (`html` is shared by the last two).
"""
