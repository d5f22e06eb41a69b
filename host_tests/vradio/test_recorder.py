"""vradio.recorder.HciRecorder: a controller's traffic, kept for assertions."""

from __future__ import annotations

from bumble import hci
from bumble.snoop import Snooper
from vradio.radio import VirtualRadio
from vradio.recorder import HciRecorder
from vradio_testlib import EventRecorder, RawHost, Runner


def test_recorder_keeps_both_directions_and_feeds_the_old_snooper(run: Runner) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            controller = radio.add_controller("hci0")
            trace = EventRecorder()
            controller.snooper = trace
            recorder = HciRecorder.install(controller)
            host = RawHost(controller)
            await host.command(hci.HCI_Reset_Command())
            start = len(recorder.packets)
            await host.command(hci.HCI_Read_BD_ADDR_Command())

            directions = [direction for direction, _ in recorder.packets]
            assert (
                directions
                == [
                    Snooper.Direction.HOST_TO_CONTROLLER,
                    Snooper.Direction.CONTROLLER_TO_HOST,
                ]
                * 2
            )
            completes = recorder.events(hci.HCI_Command_Complete_Event)
            assert [e.command_opcode for e in completes] == [
                hci.HCI_RESET_COMMAND,
                hci.HCI_READ_BD_ADDR_COMMAND,
            ]
            [read] = recorder.events(hci.HCI_Command_Complete_Event, since=start)
            assert read.command_opcode == hci.HCI_READ_BD_ADDR_COMMAND
            assert recorder.events(hci.HCI_Disconnection_Complete_Event) == []
            # The trace it replaced still saw every event.
            assert len(trace.packets) == 2

    run(scenario())
