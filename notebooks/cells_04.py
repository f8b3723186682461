"""Cells of notebooks/04_operations_day.ipynb (written by notebooks/_build.py)."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell

OPERATIONS_DAY = [
    new_markdown_cell(
        "# An operations day: sense → push → dispose (感知 → 推送 → 处置)\n\n"
        "A day of readings from the sample district's 300 sensors is replayed hour by hour "
        "through the operations loop (what `twin observe mqtt` does with each batch it "
        "receives from the broker; `twin observe replay day.csv --speed 60` publishes the "
        "same file to MQTT). Four incidents are planted in the day: a pressure-drop cluster "
        "on a water main, a gas leak, a smoke detector going silent and a flooded "
        "underpass. We watch the alarms become located events, open the burst's impact, "
        "dispatch and resolve it, and chart the city's vital signs (城市体征)."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import pandas as pd\n\n"
        "import twin\n"
        "from twin.sample.readings import day_of_readings\n"
        "from twin.sensing.events import get_event, list_events, transition\n"
        "from twin.sensing.loop import OperationsLoop\n"
        "from twin.sensing.vitals import vitals, vitals_series\n\n"
        "samples = Path('..') / 'data' / 'samples'\n"
        "workdir = Path(tempfile.mkdtemp())\n"
        "city = twin.Twin.create(workdir / 'chengdu.twin.gpkg', crs='auto')\n"
        "city.import_mapping(samples / 'mapping.yaml')\n"
        "city.build()\n"
        "readings, incidents = day_of_readings(city)\n"
        "readings.to_csv(workdir / 'day.csv', index=False)\n"
        "print(len(readings), 'readings')\n"
        "pd.DataFrame(incidents).T"
    ),
    new_markdown_cell(
        "## Replay the day through a real broker\n\n"
        "A throwaway Mosquitto starts on a free loopback port. The ingester subscribes to "
        "`city/+/+` with QoS 1 (what `twin observe mqtt chengdu.twin.gpkg --broker HOST:PORT` "
        "runs) and acknowledges a message only once its batch is stored; `replay` publishes "
        "the day's file in time order at 7200× (what `twin observe replay day.csv --speed "
        "7200` does: a day in 12 seconds). Every batch goes through the one validated ingest "
        "path into the live store beside the twin (`chengdu.twin.gpkg.live.sqlite`); the rules "
        "(the sensor layer's thresholds) run on the sensors that reported, and alarms open "
        "events, one per rule and sensor. Once the day is in, the no-data rule (30 minutes "
        "without a reading) runs on the data's own clock."
    ),
    new_code_cell(
        "import threading\n"
        "import time\n\n"
        "from twin.sensing.broker import start_mosquitto\n"
        "from twin.sensing.mqtt import MqttIngester, replay\n"
        "from twin.sensing.reload import SensorWatch\n"
        "from twin.sensing.store import from_ms\n\n"
        "broker = start_mosquitto(workdir / 'mosquitto')\n"
        "loop = OperationsLoop.open(city.path)\n"
        "timeline = []\n\n\n"
        "def on_batch(report, changed):\n"
        "    clock = from_ms(ingester.loop.store.clock_ms())\n"
        "    timeline.append({'data clock (UTC)': clock, 'stored': report.stored,\n"
        "                     'events changed': len(set(changed))})\n\n\n"
        "ingester = MqttIngester(loop, broker.host, broker.port, client_id='notebook-04',\n"
        "                        max_batch=10_000, flush_s=1.0, housekeeping_s=3600,\n"
        "                        on_batch=on_batch, before_batch=SensorWatch(city.path))\n"
        "worker = threading.Thread(target=ingester.run, daemon=True)\n"
        "worker.start()\n"
        "assert ingester.subscribed.wait(30), broker.log()\n"
        "sent = replay(readings, broker.host, broker.port, speed=7200)\n"
        "store = loop.store\n"
        "while store.count_observations() + len(store.dead_letters()) < sent:\n"
        "    time.sleep(0.5)\n"
        "ingester.stop()\n"
        "worker.join()\n"
        "broker.stop()\n"
        "loop = ingester.loop\n"
        "offline = loop.check_offline()\n"
        "print(f'{sent} published, {store.count_observations()} stored, '\n"
        "      f'{len(store.dead_letters())} dead letters; {len(offline)} offline event(s)')\n"
        "timeline = pd.DataFrame(timeline)\n"
        "timeline[timeline['events changed'] > 0]"
    ),
    new_code_cell(
        "events = list_events(loop.store)\n"
        "events[['id', 'event_type', 'grade', 'status', 'sensor_uid', 'grid', 'unit', "
        "'opened', 'cleared']]"
    ),
    new_markdown_cell(
        "## The burst: its impact came with the event\n\n"
        "The deepest pressure drop opened the first event; its likeliest pipe is the water "
        "main the logger sits on, and the event carries the break analysis of that pipe "
        "(`twin analyze cascade`): valves to close, buildings without water, roads closed "
        "by the works. The neighbouring loggers' events join the same incident."
    ),
    new_code_cell(
        "first = events[events['sensor_uid'] == incidents['pressure_drop']['sensor']].iloc[0]\n"
        "burst = get_event(loop.store, int(first['id']))\n"
        "impact = burst.impact\n"
        "print(burst.location['district_name'], burst.location['grid'], burst.location['unit'])\n"
        "print('pipe', impact['pipe'], '-', len(impact['valves_to_close']), 'valves to close,',\n"
        "      len(impact['buildings']), 'buildings without water,',\n"
        "      len(impact['roads_closed']), 'roads closed')"
    ),
    new_code_cell(
        "buildings = city.layer('buildings')\n"
        "ax_burst = buildings.plot(color='lightgrey', linewidth=0, figsize=(9, 8))\n"
        "city.layer('roads').plot(ax=ax_burst, color='grey', linewidth=0.4)\n"
        "buildings.loc[impact['buildings']].plot(ax=ax_burst, color='royalblue', linewidth=0,\n"
        "                                        label='no water')\n"
        "roads = city.layer('roads')\n"
        "roads.loc[impact['roads_closed']].plot(ax=ax_burst, color='black', linewidth=3)\n"
        "valves = city.layer('valves').loc[impact['valves_to_close']]\n"
        "valves.plot(ax=ax_burst, color='crimson', markersize=30, label='valves to close')\n"
        "sensors = city.layer('sensors')\n"
        "alarming = events.loc[events['event_type'] == 'pressure_drop', 'sensor_uid']\n"
        "sensors.loc[alarming].plot(ax=ax_burst, color='gold', markersize=60, marker='^',\n"
        "                           label='pressure alarms')\n"
        "ax_burst.legend(loc='upper left')\n"
        "ax_burst.set_title(f\"event {burst.id}: break of {impact['pipe']}\")\n"
        "ax_burst.set_axis_off()"
    ),
    new_markdown_cell(
        "## Dispose of it\n\n"
        "The desk acknowledges the event and dispatches it to the grid's responsible unit; "
        "the unit starts work and resolves it. Every step is kept with who did it."
    ),
    new_code_cell(
        "at = pd.Timestamp(burst.opened)\n"
        "transition(loop.store, burst.id, 'ack', 'ops-desk-1', at=at + pd.Timedelta(minutes=2))\n"
        "transition(loop.store, burst.id, 'dispatch', 'ops-desk-1', "
        "assignee=burst.location['unit'],\n"
        "           at=at + pd.Timedelta(minutes=4))\n"
        "transition(loop.store, burst.id, 'start', burst.location['unit'], "
        "at=at + pd.Timedelta(minutes=25))\n"
        "done = transition(loop.store, burst.id, 'resolve', burst.location['unit'],\n"
        "                  note='阀门已关闭, 抢修完成', at=at + pd.Timedelta(minutes=110))\n"
        "done.history"
    ),
    new_markdown_cell("## Vital signs (城市体征) per district"),
    new_code_cell("vitals(loop.store, loop.locator, by='district')"),
    new_code_cell(
        "import matplotlib.pyplot as plt\n\n"
        "series = vitals_series(loop.store, loop.locator, by='district')\n"
        "per_hour = series['sensors_reporting'].unstack('area').fillna(0)\n"
        "open_now = series['events_open'].unstack('area').fillna(0)\n"
        "fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)\n"
        "per_hour.plot(ax=top, legend=False)\n"
        "top.set_ylabel('sensors reporting')\n"
        "open_now.plot(ax=bottom, kind='area', stacked=True, legend=False)\n"
        "bottom.set_ylabel('open events')\n"
        "top.set_title('The day in the vital signs, per district')\n"
        "fig.tight_layout()"
    ),
]
