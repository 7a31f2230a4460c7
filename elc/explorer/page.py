"""The explorer's web page (Gradio): a map of each space and four ways to ask the ELM.

- Map: the entities of a space (elc/explorer/scatter.py); a click on one asks about it
  in the Describe tab.
- Describe: an entity (clicked, or searched by name) and a task; the answer, its semantic
  consistency and the entities whose texts lie nearest it.
- Interpolate: two entities and a slider; the answer about the mixed vector.
- Steer: an entity and a concept direction with a slider (MovieLens: a user and a genre).
- Compare: the same point answered by every loaded stage.

Every answer marks its point on the map (a steered one when the map shows its space).
Slider moves keep at most one request waiting (the latest); the model answers one request
at a time. Bad input (an unknown entity, a task the run lacks, a run without a trained
checkpoint) gets a message on the page.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import gradio as gr

from elc.explorer import scatter
from elc.explorer.loading import Explorer
from elc.explorer.model import Point, Reply
from elc.generation.answering import GenerationConfig

_MAP_HEIGHT = 460
_STATUS_LINES = 6  # loading steps shown while the model loads


def _guarded(handler: Callable) -> Callable:
    """``handler`` with ValueErrors (bad input) shown on the page as an error message."""
    def run(*args):
        try:
            return handler(*args)
        except ValueError as error:
            raise gr.Error(str(error)) from None
    return run


def _details(reply: Reply) -> str:
    lines = [f"answered in {reply.seconds:.1f} s"]
    if reply.consistency is not None:
        lines.append(f"semantic consistency (MiniLM cosine with the point's text): "
                     f"**{reply.consistency:.3f}**")
    if reply.nearest:
        lines.append("nearest entities to the answer: " + "; ".join(
            f"{label} ({cosine:.2f})" for label, cosine in reply.nearest))
    return "\n\n".join(lines)


def build_page(explorer: Explorer) -> gr.Blocks:
    """The page of ``explorer``; ``.queue().launch()`` serves it."""
    catalog, stages = explorer.catalog, explorer.stages
    spaces = list(catalog.spaces)
    steerable = [s for s in spaces if catalog.directions.get(s)]
    # The entities never move on the map: their coordinates and frame are computed once.
    coordinates = {name: explorer.maps[name](space.vectors)
                   for name, space in catalog.spaces.items()}
    frames = {name: scatter.MapFrame.fit(xy, _MAP_HEIGHT) for name, xy in coordinates.items()}

    def map_plot(space: str, fact: str) -> str:
        """The map of ``space`` coloured by ``fact`` (its marks are kept, see map_marks)."""
        table = catalog.space(space)
        fact = fact if fact in table.facts else next(iter(table.facts))
        return scatter.render_map(space, frames[space], coordinates[space], table.labels,
                                  table.facts[fact], fact)

    def map_marks(space: str, points: list[Point]) -> gr.HTML:
        """Only the marks of ``points`` on the map of ``space``, which stays as it is."""
        return gr.HTML(marks=scatter.mark_props(
            frames[space], [(explorer.maps[space](p.vector), p.label) for p in points]))

    def settings(temperature: float, top_p: float, seed: float) -> GenerationConfig:
        return dataclasses.replace(explorer.settings, temperature=float(temperature),
                                   top_p=float(top_p), seed=int(seed or 0))

    def require_model():
        if explorer.model is None:
            raise gr.Error(explorer.problem + (f" ({explorer.log[-1]})" if explorer.loading
                                               else ""))
        return explorer.model

    def status() -> str:
        title = f"## elc embedding explorer: {catalog.project}\n\n"
        if explorer.model is not None:
            return title + f"Stages loaded: {', '.join(explorer.model.stages)}."
        if explorer.loading:
            return title + "**Loading the model…**\n\n" + "\n".join(
                f"    {line}" for line in explorer.log[-_STATUS_LINES:])
        return title + f"**No model to ask.** {explorer.problem}"

    def entity_choices(space: str) -> list[str]:
        return catalog.space(space).labels

    with gr.Blocks(title="elc embedding explorer", analytics_enabled=False) as page:
        status_line = gr.Markdown(status(), elem_id="status")
        # Polls the loading progress, and stops once the model is ready or failed.
        poll = gr.Timer(1.0, active=explorer.loading)
        poll.tick(lambda: (status(), gr.Timer(active=explorer.loading)), None,
                  [status_line, poll])
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    space = gr.Dropdown(spaces, value=spaces[0], label="space", elem_id="space")
                    first_facts = list(catalog.space(spaces[0]).facts)
                    fact = gr.Dropdown(first_facts, value=first_facts[0], label="colour by",
                                       elem_id="fact")
                plot = gr.HTML(js_on_load=scatter.SCRIPT, css_template=scatter.CSS,
                               elem_id="map", marks=[])
            with gr.Column(scale=2):
                first_tasks = catalog.tasks_for(spaces[0])
                task = gr.Dropdown(first_tasks, value=first_tasks[0] if first_tasks else None,
                                   label="task", allow_custom_value=True, elem_id="task")
                stage = gr.Dropdown(stages, value=stages[-1] if stages else None, label="stage",
                                    elem_id="stage")
                with gr.Accordion("sampling", open=False):
                    first = explorer.settings
                    temperature = gr.Slider(0.0, 1.5, value=first.temperature, step=0.05,
                                            label="temperature (0: greedy)", elem_id="temperature")
                    top_p = gr.Slider(0.05, 1.0, value=first.top_p, step=0.05, label="top-p",
                                      elem_id="top_p")
                    seed = gr.Number(first.seed, precision=0, label="seed", elem_id="seed")
                sampling = [temperature, top_p, seed]
                with gr.Tabs() as tabs:
                    with gr.Tab("Describe", id="describe"):
                        entity = gr.Dropdown(entity_choices(spaces[0]), value=None,
                                             label="entity (type to search, or click the map)",
                                             allow_custom_value=True, elem_id="entity")
                        ask = gr.Button("Ask", elem_id="ask")
                        answer = gr.Textbox(label="answer", lines=4, elem_id="answer")
                        details = gr.Markdown(elem_id="details")
                    with gr.Tab("Interpolate"):
                        entity_a = gr.Dropdown(entity_choices(spaces[0]), value=None, label="a",
                                               allow_custom_value=True, elem_id="entity_a")
                        entity_b = gr.Dropdown(entity_choices(spaces[0]), value=None, label="b",
                                               allow_custom_value=True, elem_id="entity_b")
                        weight = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="weight of b",
                                           elem_id="weight")
                        mixed_answer = gr.Textbox(label="answer", lines=4,
                                                  elem_id="mixed_answer")
                        mixed_details = gr.Markdown(elem_id="mixed_details")
                    with gr.Tab("Steer"):
                        if steerable:
                            steer_space = steerable[0]
                            directions = sorted(catalog.directions[steer_space])
                            gr.Markdown(f"Moves an entity of {steer_space} along a concept "
                                        "direction, by the slider x its own length; the "
                                        f"map marks both points when it shows {steer_space}.")
                            steered = gr.Dropdown(entity_choices(steer_space), value=None,
                                                  label="entity", allow_custom_value=True,
                                                  elem_id="steered")
                            direction = gr.Dropdown(directions, value=directions[0],
                                                    label="direction", elem_id="direction")
                            amount = gr.Slider(-2.0, 2.0, value=0.0, step=0.1, label="amount",
                                               elem_id="amount")
                            steer_task = gr.Dropdown(catalog.tasks_for(steer_space),
                                                     value=catalog.tasks_for(steer_space)[0],
                                                     label="task", elem_id="steer_task")
                            steer_answer = gr.Textbox(label="answer", lines=4,
                                                      elem_id="steer_answer")
                            steer_details = gr.Markdown(elem_id="steer_details")
                        else:
                            gr.Markdown("This run has no concept directions to steer along.")
                    with gr.Tab("Compare"):
                        gr.Markdown("The Describe tab's entity and task, answered by each "
                                    "stage.")
                        compare = gr.Button("Compare stages", elem_id="compare")
                        compared = [gr.Textbox(label=f"stage {s}", lines=4,
                                               elem_id=f"compare_{s}") for s in stages]

        def on_space(space_name: str):
            table = catalog.space(space_name)
            facts, tasks = list(table.facts), catalog.tasks_for(space_name)
            names = entity_choices(space_name)
            return (gr.Dropdown(choices=facts, value=facts[0]),
                    gr.Dropdown(choices=tasks, value=tasks[0] if tasks else None),
                    *(gr.Dropdown(choices=names, value=None) for _ in range(3)),
                    gr.HTML(value=map_plot(space_name, facts[0]), marks=[]))

        def on_describe(space_name, entity_name, task_name, stage_name, *sample):
            if not entity_name:
                return "", "", map_marks(space_name, [])
            model = require_model()
            point = model.entity_point(space_name, entity_name)
            reply = model.ask(point, task_name, stage_name, settings(*sample))
            return reply.text, _details(reply), map_marks(space_name, [point])

        def on_interpolate(space_name, a, b, w, task_name, stage_name, *sample):
            if not (a and b):
                return "", "pick two entities", map_marks(space_name, [])
            model = require_model()
            point = model.mixed_point(space_name, a, b, float(w))
            reply = model.ask(point, task_name, stage_name, settings(*sample))
            ends = [model.entity_point(space_name, a), model.entity_point(space_name, b)]
            return reply.text, _details(reply), map_marks(space_name, ends + [point])

        def on_compare(space_name, entity_name, task_name, *sample):
            if not entity_name:
                raise gr.Error("pick an entity in the Describe tab first")
            model = require_model()
            point = model.entity_point(space_name, entity_name)
            return [model.ask(point, task_name, s, settings(*sample)).text for s in stages]

        def on_map_click(space_name: str, event: gr.EventData):
            # The click names the space its map was drawn for: a click on a map of a
            # space the page has since left picks nothing.
            rows = catalog.space(space_name).labels
            row = getattr(event, "row", None)
            if getattr(event, "space", None) != space_name or not (
                    isinstance(row, int) and 0 <= row < len(rows)):
                return gr.skip(), gr.skip()
            return gr.Dropdown(value=rows[row]), gr.Tabs(selected="describe")

        page.load(map_plot, [space, fact], plot)
        plot.click(on_map_click, space, [entity, tabs])
        space.change(_guarded(on_space), space,
                     [fact, task, entity, entity_a, entity_b, plot])
        fact.change(_guarded(map_plot), [space, fact], plot)
        describe_inputs = [space, entity, task, stage, *sampling]
        for trigger in (entity.change, task.change, ask.click):
            trigger(_guarded(on_describe), describe_inputs, [answer, details, plot],
                    concurrency_id="model", trigger_mode="always_last", show_progress_on=answer,
                    show_progress="minimal")
        mix_inputs = [space, entity_a, entity_b, weight, task, stage, *sampling]
        for trigger in (weight.change, entity_a.change, entity_b.change):
            trigger(_guarded(on_interpolate), mix_inputs, [mixed_answer, mixed_details, plot],
                    concurrency_id="model", trigger_mode="always_last",
                    show_progress_on=mixed_answer, show_progress="minimal")
        if stages:
            compare.click(_guarded(on_compare), [space, entity, task, *sampling], compared,
                          concurrency_id="model", trigger_mode="always_last")
        if steerable:
            def on_steer(space_name, name, direction_name, value, task_name, stage_name,
                         *sample):
                # The map keeps its own space; it shows the steered point only in that one.
                on_map = space_name == steer_space
                if not name:
                    return "", "", map_marks(space_name, []) if on_map else gr.skip()
                model = require_model()
                point = model.steered_point(steer_space, name, direction_name, float(value))
                reply = model.ask(point, task_name, stage_name, settings(*sample))
                if not on_map:
                    return reply.text, _details(reply), gr.skip()
                start = model.entity_point(steer_space, name)
                return reply.text, _details(reply), map_marks(space_name, [start, point])

            for trigger in (amount.change, steered.change, direction.change, steer_task.change):
                trigger(_guarded(on_steer), [space, steered, direction, amount, steer_task, stage,
                                             *sampling], [steer_answer, steer_details, plot],
                        concurrency_id="model", trigger_mode="always_last",
                        show_progress_on=steer_answer, show_progress="minimal")
    return page
